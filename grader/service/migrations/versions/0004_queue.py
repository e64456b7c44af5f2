"""The fair queue: why each grading was queued, when it was dispatched and started, and when each stage began.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("gradings", sa.Column("reason", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("gradings", sa.Column("dispatched_at", UTC_DATETIME, nullable=True))
    op.add_column("gradings", sa.Column("started_at", UTC_DATETIME, nullable=True))
    op.create_table(
        "grading_stages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grading_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=100), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["grading_id"], ["gradings.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_grading_stages_grading_id", "grading_stages", ["grading_id"])


def downgrade() -> None:
    op.drop_table("grading_stages")
    with op.batch_alter_table("gradings") as batch:
        batch.drop_column("started_at")
        batch.drop_column("dispatched_at")
        batch.drop_column("reason")
