"""The one settings object (pydantic-settings, env prefix ``XUNCHA_``).

Two storage profiles share it:

* ``embedded`` (default): a SQLite file and a local object directory under ``./var``; nothing
  to install beyond pip. Geometry is WKB plus indexed bounding-box columns, predicates run in
  Shapely.
* ``production``: PostgreSQL + PostGIS (psycopg 3) and an S3-compatible object store.

Built once in the app factory or CLI and passed down; tests build their own instances.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# GB/T 30428.1: 6-digit county-level division code (GB/T 2260) + 3-digit street + 3-digit
# community + a 2- or 3-digit grid sequence. Cities differ in the sequence length, hence config.
DEFAULT_GRID_CODE_PATTERN = (
    r"^(?P<district>\d{6})(?P<street>\d{3})(?P<community>\d{3})(?P<sequence>\d{2,3})$"
)


class Profile(StrEnum):
    embedded = "embedded"
    production = "production"


class Settings(BaseSettings):
    """Runtime configuration; every field can be set as ``XUNCHA_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="XUNCHA_", env_file=None, extra="ignore")

    profile: Profile = Profile.embedded
    var_dir: Path = Path("var")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Embedded default: sqlite file under var_dir; "
        "production: postgresql+psycopg://user:pass@host/db",
    )
    database_pool_size: int = 10
    # Connections opened beyond the pool at peaks (closed again when returned).
    database_max_overflow: int = Field(default=10, ge=0, le=1000)
    # How long a request waits for a free connection before it is answered 503 (and the
    # client retries later): under overload, failing fast beats queueing for half a minute.
    database_pool_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # Requests handled at once per process (the threadpool of sync endpoints). Small on
    # purpose: the work is mostly Python under one GIL, so beyond a few threads per core more
    # threads add contention (GIL hand-offs, concurrent transactions), not throughput, and
    # the pile-up feeds on itself. Requests beyond it wait on the event loop, which costs
    # nothing; bodies are received there too, so a slow phone holds no thread. In the
    # shift-change load test (docs/benchmarks.md) 8 beat 4, 16 and anyio's default 40 by far
    # when 500 phones arrived within a minute; within two minutes 40 had the shorter tail.
    request_threads: int = Field(default=8, ge=1, le=200)
    # Idle keep-alive connections are kept this long. Longer than clients' pauses between
    # requests (coordinators click every few seconds): a server closing a connection just as
    # the client reuses it makes the client see "connection reset" (seen under load).
    http_keep_alive_s: int = Field(default=75, ge=1, le=3600)
    # glibc malloc arenas per API worker (backend/core/memory.py); 0 leaves glibc's default.
    malloc_arenas: int = Field(default=2, ge=0, le=64)
    database_echo: bool = False

    object_store: Literal["local", "s3"] | None = None
    objects_dir: Path | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_bucket: str = "xuncha"
    s3_access_key: str | None = None
    s3_secret_key: SecretStr | None = None
    s3_path_style: bool = True
    s3_create_bucket: bool = False

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True

    secret_key: SecretStr = Field(
        default=SecretStr("dev-only-secret-change-me"),
        description="Signs access tokens; must be set in production.",
    )
    audit_key: SecretStr | None = Field(
        default=None,
        description="Keys the audit log's hash chain (default: derived from secret_key; set it "
        "before rotating secret_key, or old entries stop verifying)",
    )
    access_token_minutes: int = Field(default=30, ge=1, le=24 * 60)
    device_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    enrollment_code_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    public_base_url: str | None = Field(
        default=None, description="Base URL phones use (printed into enrollment QR codes)"
    )

    # Failed attempts at the doors that take secrets (backend.accounts.throttle): counted in
    # the database, so every worker process sees the same counts; a sliding window.
    auth_window_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="Window the failed-attempt limits count in"
    )
    login_max_failures_per_user: int = Field(
        default=5, ge=1, description="Failed logins per username per window, then 429"
    )
    login_max_failures_per_ip: int = Field(
        default=20, ge=1, description="Failed logins per client address per window, then 429"
    )
    enroll_max_failures_per_ip: int = Field(
        default=10, ge=1, description="Wrong enrollment codes per client address per window"
    )
    device_token_max_failures_per_ip: int = Field(
        default=30, ge=1, description="Wrong device credentials per client address per window"
    )
    failed_login_audit_per_minute: int = Field(
        default=60, ge=1, description="Failed logins recorded in the audit log per minute, at most"
    )
    forwarded_allow_ips: str | None = Field(
        default=None,
        description="Reverse proxies whose X-Forwarded-For is trusted for the client address "
        "(uvicorn's --forwarded-allow-ips; default 127.0.0.1)",
    )

    timezone: str = Field(
        default="Asia/Shanghai", description="Local time zone: what 'today' means for duty rosters"
    )

    sync_min_app_version: str = "0.0.0"
    sync_recommended_app_version: str = "0.0.0"
    sync_change_retention_days: int = Field(default=30, ge=1)

    grid_code_pattern: str = DEFAULT_GRID_CODE_PATTERN
    grid_match_tolerance_m: float = Field(default=30.0, ge=0, le=1000)
    location_poor_accuracy_m: float = Field(
        default=50.0, ge=0, description="Device accuracy above which a location is flagged"
    )
    grid_overlap_tolerance_m2: float = Field(default=1.0, ge=0)
    grid_gap_tolerance_m2: float = Field(default=1.0, ge=0)
    grid_import_max_bytes: int = 200 * 1024 * 1024

    photo_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    photo_max_pixels: int = Field(default=60_000_000, ge=1_000_000)
    upload_expiry_hours: int = Field(default=24, ge=1, le=24 * 30)
    media_url_seconds: int = Field(
        default=600, ge=30, le=900, description="Lifetime of upload and download URLs (<= 15 min)"
    )
    evidence_distance_m: float = Field(default=100.0, gt=0)
    evidence_time_hours: float = Field(default=24.0, gt=0)
    worker_in_process: bool | None = Field(
        default=None, description="Run jobs inside the API process (default: embedded only)"
    )

    @property
    def max_request_bytes(self) -> int:
        """No request body may exceed the largest upload we accept, plus form overhead."""
        return max(self.grid_import_max_bytes, self.photo_max_bytes) + 1024 * 1024

    @property
    def runs_worker_in_process(self) -> bool:
        if self.worker_in_process is not None:
            return self.worker_in_process
        return self.profile is Profile.embedded

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = value.split(":", 1)[0]
        if scheme == "postgresql" or scheme == "postgres":
            # psycopg 3 is the driver we ship; plain URLs from ops tooling mean it.
            return "postgresql+psycopg:" + value.split(":", 1)[1]
        if scheme not in ("sqlite", "postgresql+psycopg") or "://" not in value:
            raise ValueError(
                "must be sqlite:///<path> or postgresql+psycopg://user:password@host/db"
            )
        return value

    @model_validator(mode="after")
    def _fill_profile_defaults(self) -> Settings:
        if self.database_url is None:
            if self.profile is Profile.production:
                raise ValueError("XUNCHA_DATABASE_URL is required for the production profile")
            self.database_url = f"sqlite:///{(self.var_dir / 'xuncha.sqlite3').as_posix()}"
        if self.object_store is None:
            self.object_store = "s3" if self.profile is Profile.production else "local"
        if self.objects_dir is None:
            self.objects_dir = self.var_dir / "objects"
        if self.profile is Profile.production and self.is_sqlite:
            raise ValueError("the production profile needs PostgreSQL + PostGIS, not SQLite")
        if self.profile is Profile.production and self.secret_key.get_secret_value().startswith(
            "dev-only"
        ):
            raise ValueError("XUNCHA_SECRET_KEY must be set for the production profile")
        return self

    def today(self) -> date:
        """Today's date in the city's time zone (assignments and rosters use local dates)."""
        return datetime.now(ZoneInfo(self.timezone)).date()

    @property
    def url(self) -> str:
        assert self.database_url is not None  # filled by the validator
        return self.database_url

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (CLI flags, tests) on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
