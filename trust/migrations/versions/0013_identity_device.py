"""Browsers that have logged in to an account before (identity.authn's device cookies).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_device",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_identity_device_subject", "identity_device", ["subject_id"])


def downgrade() -> None:
    op.drop_index("ix_identity_device_subject", table_name="identity_device")
    op.drop_table("identity_device")
