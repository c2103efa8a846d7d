"""photos as evidence (upload state, metadata, evidence flags, renditions), tus uploads, jobs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from backend.core.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", UTCDateTime(), nullable=False),
        sa.Column("locked_by", sa.String(length=64), nullable=True),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_claim", "jobs", ["state", "run_after"], unique=False)
    op.create_table(
        "photo_uploads",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("photo_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=36), nullable=True),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("parts", sa.JSON(), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.Column("terminated_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_photo_uploads_device_id_devices")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_photo_uploads_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_photo_uploads")),
    )
    op.create_index("ix_photo_uploads_expires", "photo_uploads", ["expires_at"], unique=False)
    op.create_index(op.f("ix_photo_uploads_photo_id"), "photo_uploads", ["photo_id"], unique=False)
    op.add_column(
        "report_photos",
        sa.Column("role", sa.String(length=10), server_default=sa.text("'before'"), nullable=False),
    )
    op.add_column(
        "report_photos",
        sa.Column(
            "state", sa.String(length=10), server_default=sa.text("'declared'"), nullable=False
        ),
    )
    op.add_column("report_photos", sa.Column("object_key", sa.String(length=200), nullable=True))
    op.add_column("report_photos", sa.Column("stored_at", UTCDateTime(), nullable=True))
    op.add_column("report_photos", sa.Column("uploaded_via", sa.String(length=10), nullable=True))
    op.add_column("report_photos", sa.Column("detected_type", sa.String(length=20), nullable=True))
    op.add_column("report_photos", sa.Column("width", sa.Integer(), nullable=True))
    op.add_column("report_photos", sa.Column("height", sa.Integer(), nullable=True))
    op.add_column("report_photos", sa.Column("exif", sa.JSON(), nullable=True))
    op.add_column(
        "report_photos",
        sa.Column("flags", sa.JSON(), server_default=sa.text("'[]'"), nullable=False),
    )
    op.add_column("report_photos", sa.Column("evidence", sa.JSON(), nullable=True))
    op.add_column("report_photos", sa.Column("phash", sa.BigInteger(), nullable=True))
    op.add_column("report_photos", sa.Column("phash_b0", sa.Integer(), nullable=True))
    op.add_column("report_photos", sa.Column("phash_b1", sa.Integer(), nullable=True))
    op.add_column("report_photos", sa.Column("phash_b2", sa.Integer(), nullable=True))
    op.add_column("report_photos", sa.Column("phash_b3", sa.Integer(), nullable=True))
    op.add_column("report_photos", sa.Column("preview_key", sa.String(length=200), nullable=True))
    op.add_column("report_photos", sa.Column("thumbnail_key", sa.String(length=200), nullable=True))
    op.add_column("report_photos", sa.Column("renditions_at", UTCDateTime(), nullable=True))
    op.add_column("report_photos", sa.Column("distance_m", sa.Float(), nullable=True))
    op.create_index("ix_report_photos_phash_b0", "report_photos", ["phash_b0"], unique=False)
    op.create_index("ix_report_photos_phash_b1", "report_photos", ["phash_b1"], unique=False)
    op.create_index("ix_report_photos_phash_b2", "report_photos", ["phash_b2"], unique=False)
    op.create_index("ix_report_photos_phash_b3", "report_photos", ["phash_b3"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_report_photos_phash_b3", table_name="report_photos")
    op.drop_index("ix_report_photos_phash_b2", table_name="report_photos")
    op.drop_index("ix_report_photos_phash_b1", table_name="report_photos")
    op.drop_index("ix_report_photos_phash_b0", table_name="report_photos")
    with op.batch_alter_table("report_photos") as batch:
        batch.drop_column("distance_m")
        batch.drop_column("renditions_at")
        batch.drop_column("thumbnail_key")
        batch.drop_column("preview_key")
        batch.drop_column("phash_b3")
        batch.drop_column("phash_b2")
        batch.drop_column("phash_b1")
        batch.drop_column("phash_b0")
        batch.drop_column("phash")
        batch.drop_column("evidence")
        batch.drop_column("flags")
        batch.drop_column("exif")
        batch.drop_column("height")
        batch.drop_column("width")
        batch.drop_column("detected_type")
        batch.drop_column("uploaded_via")
        batch.drop_column("stored_at")
        batch.drop_column("object_key")
        batch.drop_column("state")
        batch.drop_column("role")
    op.drop_index(op.f("ix_photo_uploads_photo_id"), table_name="photo_uploads")
    op.drop_index("ix_photo_uploads_expires", table_name="photo_uploads")
    op.drop_table("photo_uploads")
    op.drop_index("ix_jobs_claim", table_name="jobs")
    op.drop_table("jobs")
