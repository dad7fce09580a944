"""Licence PDFs: the key an issuer signs them with (PAdES, ECDSA or RSA in the KeyStore) and
the signed PDF kept beside the sealed OFD.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("licence_issuer") as table:
        table.add_column(sa.Column("pdf_key_id", sa.String(36)))
    with op.batch_alter_table("licence") as table:
        table.add_column(sa.Column("pdf", sa.LargeBinary))
        table.add_column(sa.Column("pdf_sm3", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("licence") as table:
        table.drop_column("pdf_sm3")
        table.drop_column("pdf")
    with op.batch_alter_table("licence_issuer") as table:
        table.drop_column("pdf_key_id")
