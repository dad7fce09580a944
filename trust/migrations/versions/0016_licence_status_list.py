"""Each licence's place in a Token Status List (draft-ietf-oauth-status-list): the list's
number and a random index in it, unique per list.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("licence") as table:
        table.add_column(sa.Column("status_list", sa.Integer))
        table.add_column(sa.Column("status_index", sa.Integer))
        table.create_unique_constraint("uq_licence_status_slot", ["status_list", "status_index"])


def downgrade() -> None:
    with op.batch_alter_table("licence") as table:
        table.drop_constraint("uq_licence_status_slot", type_="unique")
        table.drop_column("status_index")
        table.drop_column("status_list")
