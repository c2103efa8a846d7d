"""Provision the external services the production-profile tests need: PostGIS and S3.

Why this module exists: the whole suite must run on a fresh machine with one command
(``scripts/dev test``), without docker-compose or a hand-configured server. So, unless the
environment points at real servers, we start throwaway instances ourselves:

* PostgreSQL + PostGIS: a private cluster from the OS packages (``initdb`` + ``pg_ctl``) in a
  temporary directory, tuned for speed (no fsync), listening on a unix socket in that directory
  and on 127.0.0.1 only. PostGIS is created in ``template1`` so every test database has it.
* S3: moto's standalone server as a subprocess on loopback, so the code under test talks real
  HTTP through boto3, exactly as against MinIO or AWS.

External servers are used instead when ``XUNCHA_TEST_DATABASE_URL`` / ``XUNCHA_TEST_S3_ENDPOINT``
are set. Everything started here is stopped by ``stop()``, by ``atexit``, and - for a session
that dies without running either (SIGKILL, OOM) - by a tiny watchdog process that notices its
stdin pipe from the session closing.

Pure Python, no pytest import: ``tests/conftest.py`` wires it into the session, and xdist
workers receive the controller's services through environment variables (``to_env`` /
``from_env``) instead of provisioning their own.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

LOOPBACK = "127.0.0.1"
PG_SUPERUSER = "postgres"
PG_START_TIMEOUT_S = 60
MOTO_START_TIMEOUT_S = 30
PORT_ATTEMPTS = 3
PG_SYSTEM_USER = "postgres"
FALLBACK_SYSTEM_USER = "xuncha-test"

# Environment variables through which the xdist controller hands its services to the workers.
_ENV_PREFIX = "XUNCHA_TEST__"

# Settings for a disposable cluster: durability is irrelevant, start-up and DDL speed are not.
_PG_TEST_SETTINGS = {
    "listen_addresses": f"'{LOOPBACK}'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "128MB",
    # JIT compilation only costs time on the tiny queries tests run.
    "jit": "off",
}


class ProvisioningError(RuntimeError):
    """A service could not be provided.

    The first line of the message is a one-line summary (used for skip reasons); further lines
    carry details such as the tail of a server log.
    """


# --------------------------------------------------------------------------------------------
# small helpers


def find_free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that is free on ``host`` right now.

    There is an unavoidable race until the server binds it, so callers retry with a new port
    when the server reports the address in use.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 25) -> str:
    """Last lines of a log file, for error messages; never raises."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(log {path} unreadable: {exc})"
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _child_env() -> dict[str, str]:
    """Environment for server subprocesses: C locale, and no PG* variables that could redirect
    the client tools (PGPORT, PGHOST, PGDATA...) to some other server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    return env


def _bypass_proxy_for_loopback() -> None:
    """Make urllib and botocore talk to 127.0.0.1 directly even when an HTTP proxy is set.

    CI machines often export HTTP(S)_PROXY; without this the loopback S3 server is unreachable
    from boto3 in the tests (workers inherit the change).
    """
    if not any(
        os.environ.get(k) for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
    ):
        return
    for key in ("NO_PROXY", "no_proxy"):
        entries = [e for e in os.environ.get(key, "").split(",") if e]
        for host in (LOOPBACK, "localhost"):
            if host not in entries:
                entries.append(host)
        os.environ[key] = ",".join(entries)


# Run by a watchdog subprocess per provisioned cluster. It blocks reading its stdin, a pipe whose
# only writer is the test session; EOF means the session closed it (normal stop) or died in any
# way at all, including SIGKILL. Then it stops the cluster and removes the directory.
_PG_WATCHDOG = """
import os, shutil, signal, subprocess, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
while os.read(0, 4096):
    pass
pg_ctl, data, tmp, uid, gid = sys.argv[1:6]
kwargs = {} if not uid else {"user": int(uid), "group": int(gid), "extra_groups": []}
try:
    if os.path.exists(os.path.join(data, "postmaster.pid")):
        subprocess.run([pg_ctl, "stop", "-D", data, "-m", "immediate", "-w", "-t", "30"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, cwd="/", timeout=60, **kwargs)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
"""

# Runs moto's standalone server, exiting as soon as the session's stdin pipe closes (see above)
# and taking its log directory with it.
_MOTO_LAUNCHER = """
import logging, os, shutil, sys, threading
def _exit_with_session():
    try:
        while os.read(0, 4096):  # raw fd: a buffered read would hang interpreter shutdown
            pass
    finally:
        shutil.rmtree(sys.argv[3], ignore_errors=True)
        os._exit(0)
threading.Thread(target=_exit_with_session, daemon=True).start()
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request log lines
from moto.server import main
main(["-H", sys.argv[1], "-p", sys.argv[2]])
"""


def _close_pipe_and_wait(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Close a watchdog/launcher's stdin (its signal to finish) and reap it."""
    if proc is None:
        return
    with contextlib.suppress(OSError):
        if proc.stdin is not None:
            proc.stdin.close()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


# --------------------------------------------------------------------------------------------
# PostgreSQL + PostGIS


@dataclass
class PostgisService:
    """A PostgreSQL server with PostGIS available, reachable by a superuser (or CREATEDB role).

    ``admin_url`` is a SQLAlchemy URL (``postgresql+psycopg://``) to an administrative database,
    used to create and drop one database per test scope.
    """

    admin_url: str
    server_version: str
    postgis_version: str
    origin: str  # "provisioned" | "external"
    provision_seconds: float = 0.0
    _stopper: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def stop(self) -> None:
        """Stop the server if this process started it; a no-op for external/inherited ones."""
        stopper, self._stopper = self._stopper, None
        if stopper is not None:
            stopper()

    @property
    def safe_url(self) -> str:
        """``admin_url`` with the password masked, for logs and report headers."""
        from sqlalchemy.engine import make_url

        return make_url(self.admin_url).render_as_string(hide_password=True)

    def describe(self) -> str:
        """One line for the pytest report header."""
        from sqlalchemy.engine import make_url

        url = make_url(self.admin_url)
        if self.origin == "provisioned":
            where = f"provisioned throwaway cluster at {url.host}:{url.port}"
        else:
            where = f"external server {self.safe_url}"
        verb = "ready" if self.origin == "provisioned" else "checked"
        ready = f", {verb} in {self.provision_seconds:.1f} s" if self.provision_seconds else ""
        return f"PostgreSQL {self.server_version} / PostGIS {self.postgis_version} ({where}{ready})"

    def to_env(self) -> dict[str, str]:
        return {
            f"{_ENV_PREFIX}PG_ADMIN_URL": self.admin_url,
            f"{_ENV_PREFIX}PG_SERVER_VERSION": self.server_version,
            f"{_ENV_PREFIX}PG_POSTGIS_VERSION": self.postgis_version,
            f"{_ENV_PREFIX}PG_ORIGIN": self.origin,
            f"{_ENV_PREFIX}PG_SECONDS": f"{self.provision_seconds:.3f}",
        }

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PostgisService | None:
        """Rebuild the description exported by ``to_env`` (without ownership: stop() no-ops)."""
        url = env.get(f"{_ENV_PREFIX}PG_ADMIN_URL")
        if not url:
            return None
        return cls(
            admin_url=url,
            server_version=env.get(f"{_ENV_PREFIX}PG_SERVER_VERSION", "?"),
            postgis_version=env.get(f"{_ENV_PREFIX}PG_POSTGIS_VERSION", "?"),
            origin=env.get(f"{_ENV_PREFIX}PG_ORIGIN", "external"),
            provision_seconds=float(env.get(f"{_ENV_PREFIX}PG_SECONDS", "0") or 0),
        )


@dataclass(frozen=True)
class PgInstallation:
    """Server binaries of one PostgreSQL major version plus its extension directory."""

    bindir: Path
    major: int
    extension_dir: Path

    @property
    def has_postgis(self) -> bool:
        return (self.extension_dir / "postgis.control").exists()


def _major_of(bindir: Path) -> int | None:
    """Major version from ``initdb --version`` ("initdb (PostgreSQL) 15.18" -> 15)."""
    try:
        out = subprocess.run(
            [str(bindir / "initdb"), "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else None


def _sharedir_of(bindir: Path, major: int) -> Path:
    """The server's share directory: ``pg_config --sharedir`` when available, else Debian's."""
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [str(pg_config), "--sharedir"], capture_output=True, text=True, timeout=10
            )
            if out.returncode == 0 and out.stdout.strip():
                return Path(out.stdout.strip())
    return Path(f"/usr/share/postgresql/{major}")


def find_postgres() -> PgInstallation:
    """Locate the newest PostgreSQL server installation.

    Order: ``XUNCHA_TEST_PG_BINDIR`` (for non-Debian layouts), the Debian/Ubuntu layout
    ``/usr/lib/postgresql/<major>/bin`` (highest major wins, matching what scripts/dev installs),
    then ``initdb`` on PATH.
    """
    candidates: list[tuple[int, Path]] = []
    override = os.environ.get("XUNCHA_TEST_PG_BINDIR")
    if override:
        bindir = Path(override)
        major = _major_of(bindir) if (bindir / "initdb").exists() else None
        if major is None:
            raise ProvisioningError(
                f"XUNCHA_TEST_PG_BINDIR={override} does not contain a working initdb"
            )
        candidates.append((major, bindir))
    else:
        for initdb in Path("/usr/lib/postgresql").glob("*/bin/initdb"):
            if initdb.parent.parent.name.isdigit():
                candidates.append((int(initdb.parent.parent.name), initdb.parent))
        if not candidates and (on_path := shutil.which("initdb")):
            bindir = Path(on_path).resolve().parent
            if (major := _major_of(bindir)) is not None:
                candidates.append((major, bindir))
    if not candidates:
        raise ProvisioningError(
            "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb, "
            "no initdb on PATH).\n"
            "Fix: run `scripts/dev test` (installs postgresql + postgresql-<major>-postgis-3 "
            "with apt-get when root/sudo is available), or set XUNCHA_TEST_DATABASE_URL to a "
            "PostgreSQL server with PostGIS."
        )
    major, bindir = max(candidates)
    if not (bindir / "pg_ctl").exists():
        raise ProvisioningError(f"found {bindir / 'initdb'} but no pg_ctl next to it")
    return PgInstallation(
        bindir=bindir, major=major, extension_dir=_sharedir_of(bindir, major) / "extension"
    )


@dataclass(frozen=True)
class _RunAs:
    """Whom the server processes run as. PostgreSQL refuses to run as root."""

    name: str | None  # None: the current (non-root) user
    uid: int = -1
    gid: int = -1

    def popen_kwargs(self) -> dict[str, Any]:
        if self.name is None:
            return {}
        # setgroups([]) drops root's supplementary groups; this is what runuser/setpriv do.
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


_useradd_lock = threading.Lock()


def _server_user() -> _RunAs:
    """The current user when unprivileged; as root, ``postgres`` or a created ``xuncha-test``."""
    if os.geteuid() != 0:
        return _RunAs(None)
    with _useradd_lock:
        for name in (PG_SYSTEM_USER, FALLBACK_SYSTEM_USER):
            with contextlib.suppress(KeyError):
                entry = pwd.getpwnam(name)
                return _RunAs(name, entry.pw_uid, entry.pw_gid)
        useradd = shutil.which("useradd")
        if useradd is None:
            raise ProvisioningError(
                "running as root, and there is neither a `postgres` user nor `useradd` to create "
                f"`{FALLBACK_SYSTEM_USER}`; PostgreSQL refuses to run as root. Run the tests as an "
                "unprivileged user, or create a system user named postgres."
            )
        result = subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", FALLBACK_SYSTEM_USER],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        try:
            entry = pwd.getpwnam(FALLBACK_SYSTEM_USER)  # also covers a concurrent useradd
        except KeyError:
            raise ProvisioningError(
                f"could not create system user {FALLBACK_SYSTEM_USER} to run PostgreSQL "
                f"(useradd exit {result.returncode}): {result.stderr.strip()}"
            ) from None
        return _RunAs(FALLBACK_SYSTEM_USER, entry.pw_uid, entry.pw_gid)


def _traversable_by_others(path: Path) -> bool:
    """True when every ancestor has the world-execute bit, so another user can reach ``path``."""
    for part in [path, *path.parents]:
        try:
            if not part.stat().st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def _make_cluster_dir(run_as: _RunAs) -> Path:
    """A private temp dir owned by the server user, short enough for a unix socket path."""
    base = Path(tempfile.gettempdir())
    # sun_path holds 107 bytes; the socket is <dir>/.s.PGSQL.<port>.
    too_long = len(str(base)) > 60
    if too_long or (run_as.name is not None and not _traversable_by_others(base)):
        base = Path("/tmp")
    tmp = Path(tempfile.mkdtemp(prefix="xuncha-pg-", dir=base))
    if run_as.name is not None:
        os.chown(tmp, run_as.uid, run_as.gid)
    return tmp


class _Cluster:
    """A throwaway cluster's processes and files; ``stop()`` is idempotent and thread-safe."""

    def __init__(self, install: PgInstallation, run_as: _RunAs) -> None:
        self.install = install
        self.run_as = run_as
        self.tmp = _make_cluster_dir(run_as)
        self.data = self.tmp / "data"
        self.log = self.tmp / "server.log"
        self.port: int | None = None
        self._lock = threading.Lock()
        self._stopped = False
        atexit.register(self.stop)
        # From here on even a SIGKILLed session cleans up after itself.
        self._watchdog: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-c", _PG_WATCHDOG, str(install.bindir / "pg_ctl"), str(self.data),
             str(self.tmp), "" if run_as.name is None else str(run_as.uid), str(run_as.gid)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C must reach the session, which then stops us
        )  # fmt: skip

    def run(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool as the server user, output captured."""
        return subprocess.run(
            [str(self.install.bindir / args[0]), *args[1:]],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.tmp,
            env=_child_env(),
            **self.run_as.popen_kwargs(),
        )

    def initdb(self, **overrides: str) -> None:
        result = self.run(
            "initdb", "-D", str(self.data), "-U", PG_SUPERUSER, "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync", timeout=120,
        )  # fmt: skip
        if result.returncode != 0:
            raise ProvisioningError(
                f"initdb failed (exit {result.returncode}) for {self.data}\n"
                + _indent((result.stdout + result.stderr).strip()[-3000:])
            )
        settings = {**_PG_TEST_SETTINGS, "unix_socket_directories": f"'{self.tmp}'", **overrides}
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# xuncha test cluster (tests/support/services.py)\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def start(self) -> None:
        """``pg_ctl start -w`` on a free port, retrying when the port was taken meanwhile."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = find_free_port()
            self.log.unlink(missing_ok=True)  # judge each attempt by its own log
            try:
                result = self.run(
                    "pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w",
                    "-t", str(PG_START_TIMEOUT_S), "-o", f"-p {port}",
                    timeout=PG_START_TIMEOUT_S + 30,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                raise ProvisioningError(
                    f"PostgreSQL did not start within {PG_START_TIMEOUT_S} s; server log:\n"
                    + _indent(_tail(self.log))
                ) from None
            if result.returncode == 0:
                self.port = port
                return
            log = _tail(self.log)
            if "Address already in use" in log and attempt < PORT_ATTEMPTS:
                continue
            raise ProvisioningError(
                f"PostgreSQL {self.install.major} failed to start on {LOOPBACK}:{port} "
                f"(pg_ctl exit {result.returncode}): {(result.stderr or result.stdout).strip()}"
                "\nserver log tail:\n" + _indent(log)
            )

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self.run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w",
                         timeout=60)  # fmt: skip
        shutil.rmtree(self.tmp, ignore_errors=True)
        watchdog, self._watchdog = self._watchdog, None
        _close_pipe_and_wait(watchdog, timeout=30)


def _read_versions(url: str) -> tuple[str, str, bool]:
    """(server version, PostGIS version, role may create databases) of the server at ``url``.

    The PostGIS version is the installed library's when the database has the extension, else
    the version the server would install; raises if PostGIS is not available at all.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 10})
    try:
        with engine.connect() as conn:
            server_version, can_create = conn.execute(
                text(
                    "SELECT current_setting('server_version'),"
                    " (SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user)"
                )
            ).one()
            installed = conn.execute(
                text("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
            ).scalar()
            if installed is not None:
                postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
            else:
                postgis = conn.execute(
                    text(
                        "SELECT default_version FROM pg_available_extensions WHERE name = 'postgis'"
                    )
                ).scalar()
                if postgis is None:
                    raise ProvisioningError(
                        "the server has no PostGIS extension available "
                        "(pg_available_extensions has no 'postgis'); install PostGIS there"
                    )
    finally:
        engine.dispose()
    return str(server_version).split()[0], str(postgis), bool(can_create)


def _provision_cluster() -> PostgisService:
    started = time.monotonic()
    install = find_postgres()
    if not install.has_postgis:
        raise ProvisioningError(
            f"PostgreSQL {install.major} found in {install.bindir}, but PostGIS is not installed "
            f"for it (no {install.extension_dir / 'postgis.control'}).\n"
            f"Fix: apt-get install postgresql-{install.major}-postgis-3 (`scripts/dev test` does "
            "this when root/sudo is available), or set XUNCHA_TEST_DATABASE_URL."
        )
    cluster = _Cluster(install, _server_user())
    try:
        cluster.initdb()
        cluster.start()
        url = f"postgresql+psycopg://{PG_SUPERUSER}@{LOOPBACK}:{cluster.port}"
        _create_postgis_in_template1(f"{url}/template1", cluster)
        # template1 now has the extension, so this reports the installed library version.
        server_version, postgis_version, _ = _read_versions(f"{url}/template1")
    except BaseException:
        cluster.stop()
        raise
    return PostgisService(
        admin_url=f"{url}/{PG_SUPERUSER}",
        server_version=server_version,
        postgis_version=postgis_version,
        origin="provisioned",
        provision_seconds=time.monotonic() - started,
        _stopper=cluster.stop,
    )


@dataclass(frozen=True)
class PrivateCluster:
    """A PostGIS cluster of one test's own, which it may crash and restart at will."""

    admin_url: str
    _cluster: _Cluster = field(repr=False, compare=False)

    def crash_restart(self) -> None:
        """``pg_ctl restart -m immediate``: every backend killed without a checkpoint, as in a
        power cut of the database process (committed work survives: commits are synchronous
        here), then started again on the same port."""
        result = self._cluster.run(
            "pg_ctl", "restart", "-D", str(self._cluster.data), "-m", "immediate", "-w",
            "-t", str(PG_START_TIMEOUT_S), "-l", str(self._cluster.log),
            timeout=PG_START_TIMEOUT_S + 30,
        )  # fmt: skip
        if result.returncode != 0:
            raise ProvisioningError(
                f"pg_ctl restart failed (exit {result.returncode}):\n"
                + _indent(_tail(self._cluster.log))
            )


@contextlib.contextmanager
def private_postgis() -> Iterator[PrivateCluster]:
    """A throwaway cluster for one test (crash tests restart it; the session's must not be).

    Unlike the session cluster, commits are synchronous: an acknowledged commit must survive
    the crash the test causes (fsync stays off: the machine itself does not crash)."""
    install = find_postgres()
    if not install.has_postgis:
        raise ProvisioningError(f"PostGIS is not installed for PostgreSQL {install.major}")
    cluster = _Cluster(install, _server_user())
    try:
        cluster.initdb(synchronous_commit="on")
        cluster.start()
        url = f"postgresql+psycopg://{PG_SUPERUSER}@{LOOPBACK}:{cluster.port}"
        _create_postgis_in_template1(f"{url}/template1", cluster)
        yield PrivateCluster(f"{url}/{PG_SUPERUSER}", cluster)
    finally:
        cluster.stop()


def _create_postgis_in_template1(url: str, cluster: _Cluster) -> None:
    """Every ``CREATE DATABASE`` then starts with PostGIS, saving ~0.5 s per test database.

    The connection is closed right away: CREATE DATABASE refuses to copy a template that has
    other sessions.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    except DBAPIError as exc:
        raise ProvisioningError(
            f"CREATE EXTENSION postgis failed in the test cluster: {exc.orig}\n"
            "server log tail:\n" + _indent(_tail(cluster.log))
        ) from None
    finally:
        engine.dispose()


def _external_postgis(raw_url: str) -> PostgisService:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError

    started = time.monotonic()
    try:
        url = make_url(raw_url)
    except ArgumentError as exc:
        raise ProvisioningError(f"XUNCHA_TEST_DATABASE_URL is not a database URL: {exc}") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")  # psycopg 3 is the only driver installed
    if not url.drivername.startswith("postgresql"):
        raise ProvisioningError(
            f"XUNCHA_TEST_DATABASE_URL must be a postgresql+psycopg:// URL, got {url.drivername}://"
        )
    safe = url.render_as_string(hide_password=True)
    admin_url = url.render_as_string(hide_password=False)
    try:
        server_version, postgis_version, can_create = _read_versions(admin_url)
    except DBAPIError as exc:
        raise ProvisioningError(
            f"cannot use XUNCHA_TEST_DATABASE_URL={safe}: {str(exc.orig).strip()}"
        ) from None
    except ProvisioningError as exc:
        raise ProvisioningError(f"cannot use XUNCHA_TEST_DATABASE_URL={safe}: {exc}") from None
    if not can_create:
        raise ProvisioningError(
            f"XUNCHA_TEST_DATABASE_URL={safe}: role {url.username!r} may not CREATE DATABASE "
            "(needs SUPERUSER or CREATEDB)"
        )
    return PostgisService(
        admin_url=admin_url,
        server_version=server_version,
        postgis_version=postgis_version,
        origin="external",
        provision_seconds=time.monotonic() - started,
    )


def provision_postgis() -> PostgisService:
    """The PostGIS server for this test session.

    ``XUNCHA_TEST_DATABASE_URL`` (a role that can CREATE DATABASE on a server offering PostGIS)
    is used as is; otherwise a throwaway cluster is created and started. Raises
    ``ProvisioningError`` with a fix-it message when neither works.
    """
    external = os.environ.get("XUNCHA_TEST_DATABASE_URL")
    if external:
        return _external_postgis(external)
    return _provision_cluster()


# --------------------------------------------------------------------------------------------
# S3


@dataclass
class S3Service:
    """An S3-compatible endpoint reachable over HTTP with path-style addressing."""

    endpoint_url: str
    access_key: str
    secret_key: str
    region: str
    origin: str  # "moto" | "external"
    provision_seconds: float = 0.0
    _stopper: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def stop(self) -> None:
        """Stop the server if this process started it; a no-op for external/inherited ones."""
        stopper, self._stopper = self._stopper, None
        if stopper is not None:
            stopper()

    def client(self) -> Any:
        """A boto3 S3 client for this endpoint: path-style (as MinIO needs), short timeouts."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(
                s3={"addressing_style": "path"},
                signature_version="s3v4",
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 2, "mode": "standard"},
            ),
        )

    def describe(self) -> str:
        """One line for the pytest report header."""
        what = "moto standalone server" if self.origin == "moto" else "external"
        verb = "ready" if self.origin == "moto" else "checked"
        ready = f", {verb} in {self.provision_seconds:.1f} s" if self.provision_seconds else ""
        return f"S3 endpoint {self.endpoint_url} ({what}{ready})"

    def to_env(self) -> dict[str, str]:
        return {
            f"{_ENV_PREFIX}S3_ENDPOINT": self.endpoint_url,
            f"{_ENV_PREFIX}S3_ACCESS_KEY": self.access_key,
            f"{_ENV_PREFIX}S3_SECRET_KEY": self.secret_key,
            f"{_ENV_PREFIX}S3_REGION": self.region,
            f"{_ENV_PREFIX}S3_ORIGIN": self.origin,
            f"{_ENV_PREFIX}S3_SECONDS": f"{self.provision_seconds:.3f}",
        }

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> S3Service | None:
        """Rebuild the description exported by ``to_env`` (without ownership: stop() no-ops)."""
        endpoint = env.get(f"{_ENV_PREFIX}S3_ENDPOINT")
        if not endpoint:
            return None
        return cls(
            endpoint_url=endpoint,
            access_key=env.get(f"{_ENV_PREFIX}S3_ACCESS_KEY", ""),
            secret_key=env.get(f"{_ENV_PREFIX}S3_SECRET_KEY", ""),
            region=env.get(f"{_ENV_PREFIX}S3_REGION", "us-east-1"),
            origin=env.get(f"{_ENV_PREFIX}S3_ORIGIN", "external"),
            provision_seconds=float(env.get(f"{_ENV_PREFIX}S3_SECONDS", "0") or 0),
        )


def _check_s3(service: S3Service, what: str) -> None:
    """list_buckets must succeed: proves endpoint, signature and credentials all work."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        service.client().list_buckets()
    except (BotoCoreError, ClientError) as exc:
        raise ProvisioningError(
            f"{what} at {service.endpoint_url} does not answer S3: {exc}"
        ) from None


def _http_answers(url: str) -> bool:
    """Any HTTP response at all (even 4xx/5xx) means the server is up."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


class _MotoProcess:
    """moto's standalone server in a subprocess; ``stop()`` is idempotent and thread-safe."""

    def __init__(self) -> None:
        self.logdir = Path(tempfile.mkdtemp(prefix="xuncha-moto-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._lock = threading.Lock()
        self._stopped = False
        atexit.register(self.stop)

    def start(self) -> str:
        """Start on a free loopback port; returns the endpoint URL once HTTP answers."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = find_free_port()
            self.logdir.mkdir(exist_ok=True)
            log_path = self.logdir / f"moto-{port}.log"
            self._log = log_path.open("wb")
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _MOTO_LAUNCHER, LOOPBACK, str(port), str(self.logdir)],
                stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT,
                cwd=self.logdir, start_new_session=True,
            )  # fmt: skip
            endpoint = f"http://{LOOPBACK}:{port}"
            deadline = time.monotonic() + MOTO_START_TIMEOUT_S
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if _http_answers(f"{endpoint}/moto-api/"):
                    return endpoint
                time.sleep(0.05)
            else:
                self._terminate()
                raise ProvisioningError(
                    f"moto server did not answer HTTP on {endpoint} within {MOTO_START_TIMEOUT_S} s"
                    "; its output:\n" + _indent(_tail(log_path))
                )
            log, code = _tail(log_path), self.proc.returncode
            self._terminate()
            if "Address already in use" in log and attempt < PORT_ATTEMPTS:
                continue
            raise ProvisioningError(
                f"moto server exited (code {code}) before answering on "
                f"{endpoint}; its output:\n" + _indent(log)
            )
        raise AssertionError("unreachable")

    def _terminate(self) -> None:
        # Closing stdin makes the launcher os._exit at once; SIGTERM would take moto ~1 s.
        proc, self.proc = self.proc, None
        _close_pipe_and_wait(proc, timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._terminate()
        shutil.rmtree(self.logdir, ignore_errors=True)


def _start_moto() -> S3Service:
    import importlib.util

    started = time.monotonic()
    missing = [m for m in ("moto", "flask", "boto3") if importlib.util.find_spec(m) is None]
    if missing:
        raise ProvisioningError(
            f"cannot start moto's S3 server: {', '.join(missing)} not installed in "
            f"{sys.executable} (needs moto[server]); run `scripts/dev setup`, or set "
            "XUNCHA_TEST_S3_ENDPOINT to an S3-compatible server"
        )
    _bypass_proxy_for_loopback()
    moto = _MotoProcess()
    try:
        endpoint = moto.start()
        service = S3Service(
            endpoint_url=endpoint,
            access_key="testing",
            secret_key="testing",
            region="us-east-1",
            origin="moto",
            _stopper=moto.stop,
        )
        _check_s3(service, "moto server")
    except BaseException:
        moto.stop()
        raise
    service.provision_seconds = time.monotonic() - started
    return service


def _external_s3(endpoint: str) -> S3Service:
    started = time.monotonic()
    if not re.match(r"^https?://", endpoint):
        raise ProvisioningError(
            f"XUNCHA_TEST_S3_ENDPOINT must be an http(s):// URL, got {endpoint!r}"
        )
    service = S3Service(
        endpoint_url=endpoint.rstrip("/"),
        access_key=os.environ.get("XUNCHA_TEST_S3_ACCESS_KEY", "minioadmin"),
        secret_key=os.environ.get("XUNCHA_TEST_S3_SECRET_KEY", "minioadmin"),
        region=os.environ.get("XUNCHA_TEST_S3_REGION", "us-east-1"),
        origin="external",
    )
    _check_s3(service, "XUNCHA_TEST_S3_ENDPOINT")
    service.provision_seconds = time.monotonic() - started
    return service


def provision_s3() -> S3Service:
    """The S3 endpoint for this test session.

    ``XUNCHA_TEST_S3_ENDPOINT`` (+ ``_ACCESS_KEY``/``_SECRET_KEY``/``_REGION``, defaulting to
    MinIO's minioadmin/minioadmin/us-east-1) is used when set and answering; otherwise moto's
    standalone server is started on loopback with credentials testing/testing.
    """
    external = os.environ.get("XUNCHA_TEST_S3_ENDPOINT")
    if external:
        return _external_s3(external)
    return _start_moto()


# --------------------------------------------------------------------------------------------
# the session's view of both


def _failure_text(what: str, exc: BaseException) -> str:
    if isinstance(exc, ProvisioningError):
        return f"{what}: {exc}"
    # A bug here, not a missing package: keep the traceback so it can be fixed.
    detail = "".join(traceback.format_exception(exc)).rstrip()
    return f"{what}: unexpected {type(exc).__name__}: {exc}\n{_indent(detail)}"


@dataclass
class SessionServices:
    """What a test session has: each service, or the reason it is unavailable."""

    postgis: PostgisService | None = None
    s3: S3Service | None = None
    postgis_error: str | None = None
    s3_error: str | None = None

    @property
    def errors(self) -> list[str]:
        return [e for e in (self.postgis_error, self.s3_error) if e]

    @classmethod
    def provision(cls) -> SessionServices:
        """Provision both services concurrently (they are independent and each takes ~1-2 s).

        Failures are recorded, not raised: whether they are fatal is the caller's decision.
        """
        services = cls()
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="provision") as pool:
            pg_future = pool.submit(provision_postgis)
            s3_future = pool.submit(provision_s3)
            try:
                services.postgis = pg_future.result()
            except Exception as exc:
                services.postgis_error = _failure_text("PostGIS unavailable", exc)
            try:
                services.s3 = s3_future.result()
            except Exception as exc:
                services.s3_error = _failure_text("S3 unavailable", exc)
        return services

    @classmethod
    def unavailable(cls, reason: str) -> SessionServices:
        return cls(postgis_error=f"PostGIS {reason}", s3_error=f"S3 {reason}")

    def export_env(self, env: MutableMapping[str, str]) -> None:
        """Describe the services in ``env`` so xdist workers (child processes) can use them."""
        for key in [k for k in env if k.startswith(_ENV_PREFIX)]:
            del env[key]
        if self.postgis is not None:
            env.update(self.postgis.to_env())
        if self.s3 is not None:
            env.update(self.s3.to_env())
        if self.postgis_error:
            env[f"{_ENV_PREFIX}PG_ERROR"] = self.postgis_error
        if self.s3_error:
            env[f"{_ENV_PREFIX}S3_ERROR"] = self.s3_error

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SessionServices:
        """The services the controller exported (xdist worker side)."""
        missing = "not described by the xdist controller (no XUNCHA_TEST__* variables)"
        postgis = PostgisService.from_env(env)
        s3 = S3Service.from_env(env)
        return cls(
            postgis=postgis,
            s3=s3,
            postgis_error=None
            if postgis
            else env.get(f"{_ENV_PREFIX}PG_ERROR", f"PostGIS {missing}"),
            s3_error=None if s3 else env.get(f"{_ENV_PREFIX}S3_ERROR", f"S3 {missing}"),
        )

    def report_lines(self) -> list[str]:
        lines = [self.postgis.describe() if self.postgis else f"{self.postgis_error}"]
        lines.append(self.s3.describe() if self.s3 else f"{self.s3_error}")
        return lines

    def stop(self) -> None:
        """Stop whatever this process provisioned (inherited descriptions have nothing to stop)."""
        for service in (self.postgis, self.s3):
            if service is not None:
                service.stop()
