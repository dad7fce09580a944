"""Holders' consents to share a licence's 有条件 fields with a consumer for a purpose
(licence/sharing.py).

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "licence_consent",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("holder_code", sa.String(18), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_by", sa.Text, nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_licence_consent_holder", "licence_consent", ["holder_code", "client_id"])


def downgrade() -> None:
    op.drop_index("ix_licence_consent_holder", "licence_consent")
    op.drop_table("licence_consent")
