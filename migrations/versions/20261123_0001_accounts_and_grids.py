"""accounts and grids: users, grid versions, grid cells, grid assignments

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from backend.core.types import UTCDateTime
from backend.migration_support import (
    create_gist_index,
    drop_gist_index,
    ensure_postgis,
    geometry_column,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    ensure_postgis(op)
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("phone", sa.String(40), nullable=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("token_version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "role IN ('inspector', 'intake_operator', 'shift_lead', 'dispatcher', "
            "'department_handler', 'admin')",
            name=op.f("ck_users_role"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "grid_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("source_filename", sa.String(300), nullable=False),
        sa.Column("source_format", sa.String(20), nullable=False),
        sa.Column("source_crs", sa.String(100), nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        sa.Column("cell_count", sa.Integer(), nullable=False),
        sa.Column("total_area_m2", sa.Float(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.Column("activated_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grid_versions")),
    )
    op.create_index(
        "uq_grid_versions_one_active",
        "grid_versions",
        ["is_active"],
        unique=True,
        sqlite_where=sa.text("is_active"),
        postgresql_where=sa.text("is_active"),
    )
    op.create_table(
        "grid_cells",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("district_code", sa.String(40), nullable=False),
        sa.Column("street_code", sa.String(40), nullable=False),
        sa.Column("community_code", sa.String(40), nullable=False),
        sa.Column("district_name", sa.String(200), nullable=True),
        sa.Column("street_name", sa.String(200), nullable=True),
        sa.Column("community_name", sa.String(200), nullable=True),
        sa.Column("zone_tier", sa.String(20), nullable=True),
        sa.Column("area_m2", sa.Float(), nullable=False),
        geometry_column("geom", "MULTIPOLYGON"),
        sa.Column("min_x", sa.Float(), nullable=False),
        sa.Column("min_y", sa.Float(), nullable=False),
        sa.Column("max_x", sa.Float(), nullable=False),
        sa.Column("max_y", sa.Float(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "zone_tier IS NULL OR zone_tier IN ('strict', 'controlled', 'general')",
            name=op.f("ck_grid_cells_zone_tier"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["grid_versions.id"],
            name=op.f("fk_grid_cells_version_id_grid_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grid_cells")),
        sa.UniqueConstraint("version_id", "code", name=op.f("uq_grid_cells_version_id_code")),
    )
    op.create_index("ix_grid_cells_version_id", "grid_cells", ["version_id"])
    op.create_index(
        "ix_grid_cells_version_community", "grid_cells", ["version_id", "community_code"]
    )
    op.create_index("ix_grid_cells_version_street", "grid_cells", ["version_id", "street_code"])
    op.create_index("ix_grid_cells_version_district", "grid_cells", ["version_id", "district_code"])
    op.create_index(
        "ix_grid_cells_version_bbox",
        "grid_cells",
        ["version_id", "min_x", "max_x", "min_y", "max_y"],
    )
    create_gist_index(op, "ix_grid_cells_geom", "grid_cells", "geom")
    op.create_table(
        "grid_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grid_code", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("role", sa.String(50), nullable=False),
        sa.Column("assignee_name", sa.String(200), nullable=False),
        sa.Column("assignee_ref", sa.String(100), nullable=True),
        sa.Column("phone", sa.String(40), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("effective_to", sa.Date(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("ended_by", sa.String(100), nullable=True),
        sa.CheckConstraint("kind IN ('person', 'unit')", name=op.f("ck_grid_assignments_kind")),
        sa.CheckConstraint(
            "effective_to IS NULL OR effective_to > effective_from",
            name=op.f("ck_grid_assignments_period"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grid_assignments")),
    )
    op.create_index(
        "ix_grid_assignments_code_from", "grid_assignments", ["grid_code", "effective_from"]
    )
    op.create_index("ix_grid_assignments_ref", "grid_assignments", ["assignee_ref"])


def downgrade() -> None:
    op.drop_index("ix_grid_assignments_ref", table_name="grid_assignments")
    op.drop_index("ix_grid_assignments_code_from", table_name="grid_assignments")
    op.drop_table("grid_assignments")
    drop_gist_index(op, "ix_grid_cells_geom", "grid_cells")
    for name in (
        "ix_grid_cells_version_bbox",
        "ix_grid_cells_version_district",
        "ix_grid_cells_version_street",
        "ix_grid_cells_version_community",
        "ix_grid_cells_version_id",
    ):
        op.drop_index(name, table_name="grid_cells")
    op.drop_table("grid_cells")
    op.drop_index("uq_grid_versions_one_active", table_name="grid_versions")
    op.drop_table("grid_versions")
    op.drop_table("users")
