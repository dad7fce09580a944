"""Each credential holder's administrator duty (三员分立, trust/duties.py); the officers
enrolled before were all security officers.

Revision ID: 0026
Revises: 0025
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("officers") as batch:
        batch.add_column(sa.Column("duty", sa.String(16), nullable=False, server_default="security-admin"))


def downgrade() -> None:
    with op.batch_alter_table("officers") as batch:
        batch.drop_column("duty")
