"""OAuth clients, authorization codes, consents, client assertions, federated issuers.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")


def upgrade() -> None:
    methods = ", ".join(f"'{m}'" for m in AUTH_METHODS)
    op.create_table(
        "oauth_client",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("secret_hash", sa.Text),
        sa.Column("auth_method", sa.String(32), nullable=False),
        sa.Column("redirect_uris", sa.Text, nullable=False),
        sa.Column("post_logout_redirect_uris", sa.Text, nullable=False),
        sa.Column("grant_types", sa.Text, nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("token_alg", sa.String(8), nullable=False),
        sa.Column("jwks", sa.Text),
        sa.Column("department", sa.String(200)),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"auth_method IN ({methods})", name="ck_oauth_client_auth_method"),
        sa.CheckConstraint("token_alg IN ('ES256', 'RS256', 'SM2')", name="ck_oauth_client_token_alg"),
        sa.CheckConstraint("status IN ('active', 'disabled')", name="ck_oauth_client_status"),
    )
    op.create_table(
        "oauth_authorization_code",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("grant_id", sa.String(32), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("nonce", sa.String(255)),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("auth_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acr", sa.String(64), nullable=False),
        sa.Column("amr", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_oauth_authorization_code_nonce", "oauth_authorization_code", ["client_id", "nonce"])
    op.create_table(
        "oauth_consent",
        sa.Column("subject_id", sa.String(32), primary_key=True),
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "oauth_client_assertion",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "federated_issuer",
        sa.Column("issuer", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("jwks", sa.Text, nullable=False),
        sa.Column("algorithms", sa.Text, nullable=False),
        sa.Column("audience", sa.String(255), nullable=False),
        sa.Column("assurance_level", sa.String(2), nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("assurance_level IN ('L1', 'L2', 'L3')", name="ck_federated_issuer_level"),
        sa.CheckConstraint("status IN ('active', 'disabled')", name="ck_federated_issuer_status"),
    )
    op.create_table(
        "federated_identity",
        sa.Column("issuer", sa.String(255), primary_key=True),
        sa.Column("external_subject", sa.String(255), primary_key=True),
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "federated_token_use",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ("federated_token_use", "federated_identity", "federated_issuer", "oauth_client_assertion",
                  "oauth_consent", "oauth_authorization_code", "oauth_client"):
        op.drop_table(table)
