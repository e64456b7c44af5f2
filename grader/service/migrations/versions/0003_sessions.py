"""Login sessions kept on the server (logout and a reissued token end them); pseudonyms unique in any case.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_sessions_person_id", "login_sessions", ["person_id"])
    op.create_index("uq_people_pseudonym_lower", "people", [sa.text("lower(pseudonym)")], unique=True)


def downgrade() -> None:
    op.drop_index("uq_people_pseudonym_lower", "people")
    op.drop_table("login_sessions")
