"""The tables of issued tokens: access tokens by jti, refresh tokens by hash, in families.

An access token is a signed JWT; its row lets introspection and revocation find it (and
says whom it was issued for). A refresh token is opaque: only its SM3 hash (hex) is kept.
Refresh tokens of one family descend from one grant by rotation; a spent one presented
again revokes the family (OAuth 2.0 Security BCP, RFC 9700 §4.14.2).
"""

from sqlalchemy import Column, DateTime, Index, String, Table, Text

from trust.db import Base

oauth_access_token = Table(
    "oauth_access_token", Base.metadata,
    Column("jti", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("subject_id", String(32)),  # NULL for the client credentials grant
    Column("grant_id", String(32)),  # the authorization code or refresh family it came from
    Column("scopes", Text, nullable=False),  # space-separated
    Column("audience", Text, nullable=False),  # space-separated
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Index("ix_oauth_access_token_grant_id", "grant_id"),
    Index("ix_oauth_access_token_expires_at", "expires_at"),
)

oauth_refresh_token = Table(
    "oauth_refresh_token", Base.metadata,
    Column("token_hash", String(64), primary_key=True),  # SM3 of the token, hex
    Column("family_id", String(32), nullable=False),
    Column("grant_id", String(32), nullable=False),  # the family's own id when no code made it
    Column("client_id", String(64), nullable=False),
    Column("subject_id", String(32), nullable=False),
    Column("scopes", Text, nullable=False),  # space-separated
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),  # spent by rotation; kept to recognise reuse
    Column("revoked_at", DateTime(timezone=True)),
    Index("ix_oauth_refresh_token_family_id", "family_id"),
    Index("ix_oauth_refresh_token_grant_id", "grant_id"),
    Index("ix_oauth_refresh_token_expires_at", "expires_at"),
)
