"""Each use of a licence through the sharing service (licence/sharing.py), for the holder's
wallet and the usage counts.

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "licence_use",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("holder_code", sa.String(18), nullable=False),
        sa.Column("licence_id", sa.String(128)),
        sa.Column("type_code", sa.String(21)),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("operator", sa.Text),
        sa.Column("fields", sa.Text, nullable=False),
    )
    op.create_index("ix_licence_use_holder", "licence_use", ["holder_code", "at"])


def downgrade() -> None:
    op.drop_index("ix_licence_use_holder", "licence_use")
    op.drop_table("licence_use")
