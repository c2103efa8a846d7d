"""cases: departments, cases, timeline, timed steps, phone tasks; reports' purpose and case

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from backend.core.types import UTCDateTime
from backend.migration_support import create_gist_index, drop_gist_index, geometry_column

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "departments",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("unit_code", sa.String(length=12), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_departments")),
    )
    op.add_column("users", sa.Column("department_code", sa.String(length=40), nullable=True))
    with op.batch_alter_table("reports") as batch:
        batch.add_column(
            sa.Column(
                "purpose",
                sa.String(length=12),
                server_default=sa.text("'violation'"),
                nullable=False,
            )
        )
        batch.add_column(sa.Column("case_id", sa.Integer(), nullable=True))
    op.create_index("ix_reports_case", "reports", ["case_id"], unique=False)
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("source_ref", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("category_code", sa.String(length=6), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        geometry_column("geom", "POINT"),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("grid_code", sa.String(length=40), nullable=True),
        sa.Column("on_spot", sa.Boolean(), nullable=False),
        sa.Column("primary_report_id", sa.String(length=36), nullable=True),
        sa.Column("reporter_id", sa.Integer(), nullable=True),
        sa.Column("department_code", sa.String(length=40), nullable=True),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        sa.Column("report_count", sa.Integer(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("rework_count", sa.Integer(), nullable=False),
        sa.Column("decline_reason", sa.Text(), nullable=True),
        sa.Column("step", sa.String(length=10), nullable=True),
        sa.Column("step_started_at", UTCDateTime(), nullable=True),
        sa.Column("step_deadline", UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('reported', 'accepted', 'filed', 'declined', 'voided', 'dispatched', "
            "'handled', 'verified', 'closed')",
            name=op.f("ck_cases_status"),
        ),
        sa.ForeignKeyConstraint(
            ["department_code"],
            ["departments.code"],
            name=op.f("fk_cases_department_code_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["merged_into_id"], ["cases.id"], name=op.f("fk_cases_merged_into_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["primary_report_id"],
            ["reports.id"],
            name=op.f("fk_cases_primary_report_id_reports"),
        ),
        sa.ForeignKeyConstraint(
            ["reporter_id"], ["users.id"], name=op.f("fk_cases_reporter_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
    )
    op.create_index("ix_cases_status_created", "cases", ["status", "created_at"], unique=False)
    op.create_index("ix_cases_created", "cases", ["created_at", "id"], unique=False)
    op.create_index("ix_cases_grid", "cases", ["grid_code"], unique=False)
    op.create_index("ix_cases_category", "cases", ["category_code"], unique=False)
    op.create_index("ix_cases_department", "cases", ["department_code", "status"], unique=False)
    op.create_index("ix_cases_deadline", "cases", ["step_deadline"], unique=False)
    op.create_index("ix_cases_lon_lat", "cases", ["lon", "lat"], unique=False)
    create_gist_index(op, "ix_cases_geom", "cases", "geom")
    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("from_status", sa.String(length=12), nullable=True),
        sa.Column("to_status", sa.String(length=12), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("actor_role", sa.String(length=32), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_events_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
    )
    op.create_index("ix_case_events_case", "case_events", ["case_id", "id"], unique=False)
    op.create_table(
        "case_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=10), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("department_code", sa.String(length=40), nullable=True),
        sa.Column("limit_minutes", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("deadline", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("finished_by", sa.String(length=64), nullable=True),
        sa.Column("working_minutes", sa.Float(), nullable=True),
        sa.Column("overdue", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_steps_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_steps")),
    )
    op.create_index("ix_case_steps_case", "case_steps", ["case_id", "id"], unique=False)
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("department_code", sa.String(length=40), nullable=True),
        sa.Column("due_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=12), nullable=True),
        sa.Column("result_report_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["users.id"], name=op.f("fk_tasks_assignee_id_users")
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_tasks_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["department_code"],
            ["departments.code"],
            name=op.f("fk_tasks_department_code_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["result_report_id"],
            ["reports.id"],
            name=op.f("fk_tasks_result_report_id_reports"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    op.create_index("ix_tasks_assignee", "tasks", ["assignee_id", "status"], unique=False)
    op.create_index("ix_tasks_department", "tasks", ["department_code", "status"], unique=False)
    op.create_index("ix_tasks_case", "tasks", ["case_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tasks_case", table_name="tasks")
    op.drop_index("ix_tasks_department", table_name="tasks")
    op.drop_index("ix_tasks_assignee", table_name="tasks")
    op.drop_table("tasks")
    op.drop_index("ix_case_steps_case", table_name="case_steps")
    op.drop_table("case_steps")
    op.drop_index("ix_case_events_case", table_name="case_events")
    op.drop_table("case_events")
    drop_gist_index(op, "ix_cases_geom", "cases")
    for name in (
        "ix_cases_lon_lat",
        "ix_cases_deadline",
        "ix_cases_department",
        "ix_cases_category",
        "ix_cases_grid",
        "ix_cases_created",
        "ix_cases_status_created",
    ):
        op.drop_index(name, table_name="cases")
    op.drop_table("cases")
    op.drop_index("ix_reports_case", table_name="reports")
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("case_id")
        batch.drop_column("purpose")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("department_code")
    op.drop_table("departments")
