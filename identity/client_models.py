"""The tables of the OIDC provider: registered clients, authorization codes, consents,
used client assertions, and federated issuers with the identities linked to them.

Secrets and codes are never stored in clear: a client secret is kept as an argon2id PHC
string (``identity.passwords``), an authorization code as its SM3 hash (hex).
"""

from sqlalchemy import CheckConstraint, Column, DateTime, Index, String, Table, Text

from trust.db import Base

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
_AUTH_METHOD_LIST = ", ".join(f"'{m}'" for m in AUTH_METHODS)

oauth_client = Table(
    "oauth_client", Base.metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("secret_hash", Text),  # NULL for private_key_jwt and public clients
    Column("auth_method", String(32), nullable=False),
    Column("redirect_uris", Text, nullable=False),  # JSON list, matched exactly
    Column("post_logout_redirect_uris", Text, nullable=False),  # JSON list
    Column("grant_types", Text, nullable=False),  # space-separated
    Column("scopes", Text, nullable=False),  # space-separated
    Column("token_alg", String(8), nullable=False),
    Column("jwks", Text),  # JSON JWK set, for private_key_jwt
    Column("department", String(200)),
    Column("status", String(8), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(f"auth_method IN ({_AUTH_METHOD_LIST})", name="ck_oauth_client_auth_method"),
    CheckConstraint("token_alg IN ('ES256', 'RS256', 'SM2')", name="ck_oauth_client_token_alg"),
    CheckConstraint("status IN ('active', 'disabled')", name="ck_oauth_client_status"),
)

oauth_authorization_code = Table(
    "oauth_authorization_code", Base.metadata,
    Column("code_hash", String(64), primary_key=True),  # SM3 of the code, hex
    Column("grant_id", String(32), nullable=False),  # what the code issued: revoked on replay
    Column("client_id", String(64), nullable=False),
    Column("subject_id", String(32), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("nonce", String(255)),
    Column("code_challenge", String(128), nullable=False),  # S256 only (RFC 7636 §4.2)
    Column("auth_time", DateTime(timezone=True), nullable=False),
    Column("acr", String(64), nullable=False),
    Column("amr", Text, nullable=False),  # space-separated
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),  # kept after use, so a replay is recognised
    Index("ix_oauth_authorization_code_nonce", "client_id", "nonce"),
)

oauth_consent = Table(
    "oauth_consent", Base.metadata,
    Column("subject_id", String(32), primary_key=True),
    Column("client_id", String(64), primary_key=True),
    Column("scopes", Text, nullable=False),  # space-separated, what the person allowed
    Column("granted_at", DateTime(timezone=True), nullable=False),
)

# RFC 7523 §3 item 7: a client assertion's jti is accepted once.
oauth_client_assertion = Table(
    "oauth_client_assertion", Base.metadata,
    Column("client_id", String(64), primary_key=True),
    Column("jti", String(255), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# 身份互认: identity providers of other provinces or the national platform whose ID tokens
# this service accepts in token exchange (RFC 8693), under a federation agreement.
federated_issuer = Table(
    "federated_issuer", Base.metadata,
    Column("issuer", String(255), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("jwks", Text, nullable=False),  # JSON JWK set
    Column("algorithms", Text, nullable=False),  # space-separated
    Column("audience", String(255), nullable=False),  # the aud their ID tokens carry for us
    Column("assurance_level", String(2), nullable=False),  # what the agreement grants
    Column("scopes", Text, nullable=False),  # the most an exchanged token may carry
    Column("status", String(8), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("assurance_level IN ('L1', 'L2', 'L3')", name="ck_federated_issuer_level"),
    CheckConstraint("status IN ('active', 'disabled')", name="ck_federated_issuer_status"),
)

federated_identity = Table(
    "federated_identity", Base.metadata,
    Column("issuer", String(255), primary_key=True),
    Column("external_subject", String(255), primary_key=True),
    Column("subject_id", String(32), nullable=False),
    Column("linked_at", DateTime(timezone=True), nullable=False),
)

# An external ID token is exchanged once (SM3 of the token, hex).
federated_token_use = Table(
    "federated_token_use", Base.metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
