"""The text of each licence's QR code and the kid of the key that signed its payload, so a
retired QR key is known to be needed while any licence it signed stands.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("licence") as table:
        table.add_column(sa.Column("qr_text", sa.Text))
        table.add_column(sa.Column("qr_kid", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("licence") as table:
        table.drop_column("qr_kid")
        table.drop_column("qr_text")
