"""OAuth tokens: issued access tokens, refresh token families.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_access_token",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(32)),
        sa.Column("grant_id", sa.String(32)),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("audience", sa.Text, nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_oauth_access_token_grant_id", "oauth_access_token", ["grant_id"])
    op.create_index("ix_oauth_access_token_expires_at", "oauth_access_token", ["expires_at"])
    op.create_table(
        "oauth_refresh_token",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("family_id", sa.String(32), nullable=False),
        sa.Column("grant_id", sa.String(32), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_oauth_refresh_token_family_id", "oauth_refresh_token", ["family_id"])
    op.create_index("ix_oauth_refresh_token_grant_id", "oauth_refresh_token", ["grant_id"])
    op.create_index("ix_oauth_refresh_token_expires_at", "oauth_refresh_token", ["expires_at"])


def downgrade() -> None:
    op.drop_table("oauth_refresh_token")
    op.drop_table("oauth_access_token")
