"""Licence QR signing keys: one current per issuer, rotated ones kept (retired) for the QR
codes they signed.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "licence_qr_key",
        sa.Column("key_id", sa.String(36), primary_key=True),
        sa.Column("issuer_code", sa.String(18), nullable=False),
        sa.Column("algorithm", sa.String(32), nullable=False),
        sa.Column("kid", sa.String(16), nullable=False),
        sa.Column("spki", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_licence_qr_key_issuer_code", "licence_qr_key", ["issuer_code"])
    op.create_index("ix_licence_qr_key_kid", "licence_qr_key", ["kid"])


def downgrade() -> None:
    op.drop_index("ix_licence_qr_key_kid", "licence_qr_key")
    op.drop_index("ix_licence_qr_key_issuer_code", "licence_qr_key")
    op.drop_table("licence_qr_key")
