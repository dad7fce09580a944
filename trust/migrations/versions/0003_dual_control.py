"""Dual control: security officers, the approval policy, requests and decisions.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DEFAULT_THRESHOLD = 2
DEFAULT_TTL_SECONDS = 24 * 3600


def upgrade() -> None:
    op.create_table(
        "officers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    policy = op.create_table(
        "approval_policy",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("threshold", sa.Integer, nullable=False),
        sa.Column("ttl_seconds", sa.Integer, nullable=False),
        sa.CheckConstraint("id = 1", name="ck_approval_policy_one_row"),
    )
    op.bulk_insert(policy, [{"id": 1, "threshold": DEFAULT_THRESHOLD, "ttl_seconds": DEFAULT_TTL_SECONDS}])
    op.create_table(
        "approval_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("requester", sa.String(64), sa.ForeignKey("officers.id"), nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("result", sa.Text),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_approval_requests_status", "approval_requests", ["status"])
    op.create_table(
        "approval_decisions",
        sa.Column("request_id", sa.String(32), sa.ForeignKey("approval_requests.id"), primary_key=True),
        sa.Column("officer_id", sa.String(64), sa.ForeignKey("officers.id"), primary_key=True),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("approval_decisions")
    op.drop_index("ix_approval_requests_status", "approval_requests")
    op.drop_table("approval_requests")
    op.drop_table("approval_policy")
    op.drop_table("officers")
