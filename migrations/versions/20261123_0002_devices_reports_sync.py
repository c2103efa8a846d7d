"""devices, reports and sync bookkeeping: devices, enrollment codes, reports, report photos,
processed mutations, change log, scope snapshots, horizon

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from backend.core.types import UTCDateTime
from backend.migration_support import create_gist_index, drop_gist_index, geometry_column

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("grid_versions") as batch:
        batch.add_column(
            sa.Column("activation_seq", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    op.create_table(
        "sync_changes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("xid", sa.BigInteger(), nullable=False),
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("entity_id", sa.String(length=40), nullable=False),
        sa.Column("grid_code", sa.String(length=40), nullable=True),
        sa.Column("prev_grid_code", sa.String(length=40), nullable=True),
        sa.Column("owner_user_id", sa.Integer(), nullable=True),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_sync_changes")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_sync_changes_grid", "sync_changes", ["grid_code"], unique=False)
    op.create_index("ix_sync_changes_owner", "sync_changes", ["owner_user_id"], unique=False)
    op.create_index("ix_sync_changes_prev_grid", "sync_changes", ["prev_grid_code"], unique=False)
    op.create_index("ix_sync_changes_position", "sync_changes", ["xid", "seq"], unique=False)
    op.create_table(
        "sync_horizon",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("xid", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("pruned_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_horizon")),
    )
    op.create_table(
        "sync_scopes",
        sa.Column("scope_hash", sa.String(length=64), nullable=False),
        sa.Column("grid_version_id", sa.Integer(), nullable=True),
        sa.Column("grid_activation_seq", sa.Integer(), nullable=False),
        sa.Column("grid_codes", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope_hash", name=op.f("pk_sync_scopes")),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("app_version", sa.String(length=40), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("last_mutation_id", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_devices_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
    )
    op.create_index(op.f("ix_devices_user_id"), "devices", ["user_id"], unique=False)
    op.create_table(
        "enrollment_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("device_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_enrollment_codes_device_id_devices")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_enrollment_codes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_enrollment_codes_code_hash")),
    )
    op.create_index("ix_enrollment_codes_user", "enrollment_codes", ["user_id"], unique=False)
    op.create_table(
        "reports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("reporter_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("create_digest", sa.String(length=64), nullable=False),
        sa.Column("category_code", sa.String(length=6), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("loc_lon", sa.Float(), nullable=False),
        sa.Column("loc_lat", sa.Float(), nullable=False),
        sa.Column("loc_crs", sa.String(length=10), nullable=False),
        sa.Column("loc_accuracy_m", sa.Float(), nullable=False),
        sa.Column("loc_fix_time", UTCDateTime(), nullable=False),
        sa.Column("loc_provider", sa.String(length=10), nullable=False),
        geometry_column("geom", "POINT"),
        sa.Column("min_x", sa.Float(), nullable=False),
        sa.Column("min_y", sa.Float(), nullable=False),
        sa.Column("max_x", sa.Float(), nullable=False),
        sa.Column("max_y", sa.Float(), nullable=False),
        sa.Column("grid_code", sa.String(length=40), nullable=True),
        sa.Column("grid_version_id", sa.Integer(), nullable=True),
        sa.Column("match_kind", sa.String(length=10), nullable=True),
        sa.Column("match_distance_m", sa.Float(), nullable=True),
        sa.Column("match_candidates", sa.JSON(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("captured_at", UTCDateTime(), nullable=False),
        sa.Column("captured_offset_min", sa.Integer(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("field_versions", sa.JSON(), nullable=False),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('submitted', 'accepted', 'declined', 'merged', 'closed')",
            name=op.f("ck_reports_status"),
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_reports_device_id_devices")
        ),
        sa.ForeignKeyConstraint(
            ["grid_version_id"],
            ["grid_versions.id"],
            name=op.f("fk_reports_grid_version_id_grid_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["reporter_id"], ["users.id"], name=op.f("fk_reports_reporter_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
    )
    op.create_index(
        "ix_reports_bbox", "reports", ["min_x", "max_x", "min_y", "max_y"], unique=False
    )
    create_gist_index(op, "ix_reports_geom", "reports", "geom")
    op.create_index("ix_reports_grid", "reports", ["grid_code"], unique=False)
    op.create_index("ix_reports_reporter", "reports", ["reporter_id"], unique=False)
    op.create_table(
        "sync_mutations",
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("mutation_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("record_id", sa.String(length=40), nullable=True),
        sa.Column("record_version", sa.Integer(), nullable=True),
        sa.Column("processed_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_sync_mutations_device_id_devices")
        ),
        sa.PrimaryKeyConstraint("device_id", "mutation_id", name=op.f("pk_sync_mutations")),
    )
    op.create_index(
        "ix_sync_mutations_record", "sync_mutations", ["device_id", "record_id"], unique=False
    )
    op.create_table(
        "report_photos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("photo_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_report_photos_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_photos")),
        sa.UniqueConstraint("photo_id", name=op.f("uq_report_photos_photo_id")),
    )
    op.create_index("ix_report_photos_report", "report_photos", ["report_id"], unique=False)
    op.create_index("ix_report_photos_sha256", "report_photos", ["sha256"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_report_photos_sha256", table_name="report_photos")
    op.drop_index("ix_report_photos_report", table_name="report_photos")
    op.drop_table("report_photos")
    op.drop_index("ix_sync_mutations_record", table_name="sync_mutations")
    op.drop_table("sync_mutations")
    op.drop_index("ix_reports_reporter", table_name="reports")
    op.drop_index("ix_reports_grid", table_name="reports")
    drop_gist_index(op, "ix_reports_geom", "reports")
    op.drop_index("ix_reports_bbox", table_name="reports")
    op.drop_table("reports")
    op.drop_index("ix_enrollment_codes_user", table_name="enrollment_codes")
    op.drop_table("enrollment_codes")
    op.drop_index(op.f("ix_devices_user_id"), table_name="devices")
    op.drop_table("devices")
    op.drop_table("sync_scopes")
    op.drop_table("sync_horizon")
    op.drop_index("ix_sync_changes_position", table_name="sync_changes")
    op.drop_index("ix_sync_changes_owner", table_name="sync_changes")
    op.drop_index("ix_sync_changes_prev_grid", table_name="sync_changes")
    op.drop_index("ix_sync_changes_grid", table_name="sync_changes")
    op.drop_table("sync_changes")
    with op.batch_alter_table("grid_versions") as batch:
        batch.drop_column("activation_seq")
