"""The certificate authority: CAs, the certificates they issued, escrowed encryption keys.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ca_authority",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("family", sa.String(8), nullable=False),
        sa.Column("parent", sa.String(64), sa.ForeignKey("ca_authority.name")),
        sa.Column("key_id", sa.String(36), nullable=False),
        sa.Column("certificate", sa.LargeBinary, nullable=False),
        sa.Column("crl_number", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("family IN ('sm2', 'ecdsa', 'rsa')", name="ck_ca_authority_family"),
    )
    op.create_table(
        "ca_certificate",
        sa.Column("issuer", sa.String(64), sa.ForeignKey("ca_authority.name"), primary_key=True),
        sa.Column("serial", sa.String(64), primary_key=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("profile", sa.String(32), nullable=False),
        sa.Column("der", sa.LargeBinary, nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(8), nullable=False, server_default="good"),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("revocation_reason", sa.String(32)),
        sa.Column("key_id", sa.String(36)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('good', 'revoked')", name="ck_ca_certificate_status"),
    )
    op.create_index("ix_ca_certificate_status", "ca_certificate", ["issuer", "status"])
    op.create_table(
        "ca_escrow",
        sa.Column("issuer", sa.String(64), primary_key=True),
        sa.Column("serial", sa.String(64), primary_key=True),
        sa.Column("signing_serial", sa.String(64), nullable=False),
        sa.Column("escrow_key_id", sa.String(36), nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recovered_at", sa.DateTime(timezone=True)),
        sa.ForeignKeyConstraint(["issuer", "serial"], ["ca_certificate.issuer", "ca_certificate.serial"],
                                name="fk_ca_escrow_certificate"),
    )


def downgrade() -> None:
    op.drop_table("ca_escrow")
    op.drop_index("ix_ca_certificate_status", "ca_certificate")
    op.drop_table("ca_certificate")
    op.drop_table("ca_authority")
