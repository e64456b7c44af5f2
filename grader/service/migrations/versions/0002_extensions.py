"""Per-student extensions; lateness is no longer stored with a submission but computed from the policy.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "extensions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("assignment_id", sa.String(length=64), nullable=False),
        sa.Column("due", UTC_DATETIME, nullable=False),
        sa.Column("hard_deadline", UTC_DATETIME, nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("granted_by", sa.String(length=200), nullable=False),
        sa.Column("granted_at", UTC_DATETIME, nullable=False),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.Column("revoked_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_extensions_person_id", "extensions", ["person_id"])
    with op.batch_alter_table("submissions") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("days_late")


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("days_late", sa.Integer(), nullable=False, server_default="0"))
    op.drop_table("extensions")
