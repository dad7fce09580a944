"""The stored CRL of a root CA: its key signs only under dual control, so its CRL is signed
when the hierarchy is created (or by `trustctl ca crl`) and served from here.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ca_authority", sa.Column("crl", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ca_authority") as batch:
        batch.drop_column("crl")
