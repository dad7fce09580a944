"""Licences converted from existing ones (licence/conversion.py): the source of each, unique by
type and licence number.

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "licence_conversion",
        sa.Column("licence_id", sa.String(128), primary_key=True),
        sa.Column("type_code", sa.String(21), nullable=False),
        sa.Column("licence_no", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("source_row", sa.Integer, nullable=False),
        sa.Column("image_sha256", sa.String(64)),
        sa.Column("operator", sa.Text, nullable=False),
        sa.Column("converted_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("type_code", "licence_no", name="uq_licence_conversion_number"),
    )


def downgrade() -> None:
    op.drop_table("licence_conversion")
