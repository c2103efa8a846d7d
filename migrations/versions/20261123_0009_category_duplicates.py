"""categories: duplicate-suggestion radius and window per category

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: existing categories keep the defaults until a file sets values.
    with op.batch_alter_table("categories") as batch:
        batch.add_column(sa.Column("dup_radius_m", sa.Float(), nullable=True))
        batch.add_column(sa.Column("dup_window_minutes", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("categories") as batch:
        batch.drop_column("dup_window_minutes")
        batch.drop_column("dup_radius_m")
