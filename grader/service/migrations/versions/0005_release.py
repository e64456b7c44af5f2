"""Published assignments (release = "when_published") and regrade requests with their threads.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "publications",
        sa.Column("assignment_id", sa.String(length=64), nullable=False),
        sa.Column("published_by", sa.String(length=200), nullable=False),
        sa.Column("published_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("assignment_id"),
    )
    op.create_table(
        "regrade_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.Enum("open", "resolved", name="requeststate", native_enum=False, length=16),
                  nullable=False),
        sa.Column("opened_at", UTC_DATETIME, nullable=False),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("resolved_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(["submission_id"], ["submissions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_regrade_requests_submission_id", "regrade_requests", ["submission_id"])
    op.create_index("ix_regrade_requests_state", "regrade_requests", ["state"])
    op.create_table(
        "regrade_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.String(length=2000), nullable=False),
        sa.Column("written_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["regrade_requests.id"]),
        sa.ForeignKeyConstraint(["author_id"], ["people.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_regrade_messages_request_id", "regrade_messages", ["request_id"])


def downgrade() -> None:
    op.drop_table("regrade_messages")
    op.drop_table("regrade_requests")
    op.drop_table("publications")
