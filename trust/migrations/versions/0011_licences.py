"""The licence authority: type versions, issuers, licences, history, serials, idempotency keys.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

STATUSES = ("01", "02", "03", "04", "05", "06", "07", "99")


def upgrade() -> None:
    op.create_table(
        "licence_type",
        sa.Column("type_code", sa.String(21), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
    )
    op.create_table(
        "licence_issuer",
        sa.Column("type_code", sa.String(21), primary_key=True),
        sa.Column("issuer_code", sa.String(18), primary_key=True),
        sa.Column("issuer_name", sa.Text, nullable=False),
        sa.Column("area_code", sa.String(6)),
        sa.Column("es_id", sa.String(32), sa.ForeignKey("seal_registry.es_id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "licence_issuer_client",
        sa.Column("type_code", sa.String(21), primary_key=True),
        sa.Column("issuer_code", sa.String(18), primary_key=True),
        sa.Column("client_id", sa.String(255), primary_key=True),
    )
    op.create_table(
        "licence_serial",
        sa.Column("type_code", sa.String(21), primary_key=True),
        sa.Column("issuer_code", sa.String(18), primary_key=True),
        sa.Column("last", sa.Integer, nullable=False),
    )
    statuses = ", ".join(f"'{s}'" for s in STATUSES)
    op.create_table(
        "licence",
        sa.Column("licence_id", sa.String(128), primary_key=True),
        sa.Column("base", sa.String(120), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("type_code", sa.String(21), nullable=False),
        sa.Column("type_version", sa.Integer, nullable=False),
        sa.Column("issuer_code", sa.String(18), nullable=False),
        sa.Column("holder_code", sa.String(18), nullable=False),
        sa.Column("licence_no", sa.Text, nullable=False),
        sa.Column("issue_date", sa.Date, nullable=False),
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("valid_to", sa.Date),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("status", sa.String(2), nullable=False),
        sa.Column("supersedes", sa.String(128)),
        sa.Column("superseded_by", sa.String(128)),
        sa.Column("es_id", sa.String(32), nullable=False),
        sa.Column("ofd", sa.LargeBinary, nullable=False),
        sa.Column("ofd_sm3", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"status IN ({statuses})", name="ck_licence_status"),
    )
    op.create_index("ix_licence_base", "licence", ["base", "version"], unique=True)
    op.create_index("ix_licence_issuer", "licence", ["issuer_code", "created_at"])
    op.create_index("ix_licence_holder", "licence", ["holder_code"])
    op.create_table(
        "licence_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("licence_id", sa.String(128), sa.ForeignKey("licence.licence_id"), nullable=False),
        sa.Column("operation", sa.String(2), nullable=False),
        sa.Column("from_status", sa.String(2)),
        sa.Column("to_status", sa.String(2), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_licence_history_licence", "licence_history", ["licence_id"])
    op.create_table(
        "licence_idempotency",
        sa.Column("client_id", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_sm3", sa.String(64), nullable=False),
        sa.Column("licence_id", sa.String(128), sa.ForeignKey("licence.licence_id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("licence_idempotency")
    op.drop_index("ix_licence_history_licence", table_name="licence_history")
    op.drop_table("licence_history")
    for index in ("ix_licence_holder", "ix_licence_issuer", "ix_licence_base"):
        op.drop_index(index, table_name="licence")
    op.drop_table("licence")
    op.drop_table("licence_serial")
    op.drop_table("licence_issuer_client")
    op.drop_table("licence_issuer")
    op.drop_table("licence_type")
