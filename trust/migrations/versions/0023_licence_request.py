"""Consumers' requests for licences' 有条件 fields, answered by the issuing department
(licence/share_requests.py).

Revision ID: 0023
Revises: 0022
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "licence_request",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("operator", sa.Text),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("licence_id", sa.String(128), nullable=False),
        sa.Column("base", sa.String(120), nullable=False),
        sa.Column("holder_code", sa.String(18), nullable=False),
        sa.Column("type_code", sa.String(21), nullable=False),
        sa.Column("issuer_code", sa.String(18), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
        sa.Column("answered_by", sa.Text),
        sa.Column("answer", sa.Text),
        sa.Column("until", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('pending', 'approved', 'refused')", name="ck_licence_request_status"),
    )
    op.create_index("ix_licence_request_issuer", "licence_request", ["issuer_code", "status"])
    op.create_index("ix_licence_request_use", "licence_request", ["base", "client_id"])


def downgrade() -> None:
    op.drop_index("ix_licence_request_use", "licence_request")
    op.drop_index("ix_licence_request_issuer", "licence_request")
    op.drop_table("licence_request")
