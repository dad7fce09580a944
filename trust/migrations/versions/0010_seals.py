"""The seal registry: seals, their status history, and per-seal use authorisation.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

STATUSES = ("applied", "approved", "made", "active", "suspended", "revoked", "expired", "destroyed")
TYPES = ("official", "contract", "finance", "approval", "personal", "other")


def upgrade() -> None:
    statuses = ", ".join(f"'{s}'" for s in STATUSES)
    types = ", ".join(f"'{t}'" for t in TYPES)
    op.create_table(
        "seal_registry",
        sa.Column("es_id", sa.String(32), primary_key=True),
        sa.Column("holder_name", sa.Text, nullable=False),
        sa.Column("holder_uscc", sa.String(18), nullable=False),
        sa.Column("seal_type", sa.String(16), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("picture_type", sa.String(8), nullable=False),
        sa.Column("picture", sa.LargeBinary, nullable=False),
        sa.Column("picture_width_mm", sa.Integer, nullable=False),
        sa.Column("picture_height_mm", sa.Integer, nullable=False),
        sa.Column("holder_certificate", sa.LargeBinary, nullable=False),
        sa.Column("holder_key_id", sa.String(36)),
        sa.Column("maker_certificate", sa.LargeBinary),
        sa.Column("seal_der", sa.LargeBinary),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"status IN ({statuses})", name="ck_seal_registry_status"),
        sa.CheckConstraint(f"seal_type IN ({types})", name="ck_seal_registry_type"),
        sa.CheckConstraint("origin IN ('made', 'imported')", name="ck_seal_registry_origin"),
    )
    op.create_index("ix_seal_registry_holder", "seal_registry", ["holder_uscc", "status"])
    op.create_table(
        "seal_status_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("es_id", sa.String(32), sa.ForeignKey("seal_registry.es_id"), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_seal_status_history_es_id", "seal_status_history", ["es_id"])
    op.create_table(
        "seal_authorisation",
        sa.Column("es_id", sa.String(32), sa.ForeignKey("seal_registry.es_id"), primary_key=True),
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("principal", sa.String(255), primary_key=True),
        sa.CheckConstraint("kind IN ('client', 'operator')", name="ck_seal_authorisation_kind"),
    )


def downgrade() -> None:
    op.drop_table("seal_authorisation")
    op.drop_index("ix_seal_status_history_es_id", table_name="seal_status_history")
    op.drop_table("seal_status_history")
    op.drop_index("ix_seal_registry_holder", table_name="seal_registry")
    op.drop_table("seal_registry")
