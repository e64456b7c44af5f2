"""A grading's credited metric is whichever the assignment's task declares (an accuracy, or an error such as a mean
squared error): the `accuracy` column becomes `metric_value`, its values kept.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

import warnings

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _rename("accuracy", "metric_value")


def downgrade() -> None:
    _rename("metric_value", "accuracy")


def _rename(old: str, new: str) -> None:
    # On SQLite the batch copy reflects the tables gradings refers to, people among them, whose index on
    # lower(pseudonym) SQLAlchemy cannot reflect; the copy does not need it, and the warning would reach the TA.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        with op.batch_alter_table("gradings") as batch:  # SQLite renames a column only through a table copy
            batch.alter_column(old, new_column_name=new)
