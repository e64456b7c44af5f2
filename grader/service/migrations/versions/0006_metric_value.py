"""A grading's credited metric is whichever the assignment's task declares (an accuracy, or an error such as a mean
squared error): the `accuracy` column becomes `metric_value`, its values kept.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gradings") as batch:  # SQLite renames a column only through a table copy
        batch.alter_column("accuracy", new_column_name="metric_value")


def downgrade() -> None:
    with op.batch_alter_table("gradings") as batch:
        batch.alter_column("metric_value", new_column_name="accuracy")
