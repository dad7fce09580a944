"""The tables of people and authentication: subjects, officer roles, representatives of
legal persons, login throttling and login sessions.

Nothing secret is kept in clear: passwords as argon2id hashes, TOTP secrets as SM2
ciphertexts to a KeyStore encryption key (``totp_key_id`` names it), session cookies as
their SM3 hash. Subject ids are uuid4 hex (32 characters); other packages' tables refer
to them without foreign keys.
"""

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from trust.db import Base

KINDS = ("person", "legal_person", "officer")
LEVELS = ("L1", "L2", "L3")  # self-asserted, checked against an identity source, face to face or certificate
STATUSES = ("active", "disabled")

identity_subject = Table(
    "identity_subject", Base.metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("username", String(64), nullable=False, unique=True),  # lower case
    Column("display_name", Text, nullable=False),
    Column("identifier", String(32), nullable=False),  # resident ID number, USCC or staff number
    Column("assurance_level", String(2), nullable=False),
    Column("assurance_source", Text, nullable=False),
    Column("assurance_checked_at", DateTime(timezone=True), nullable=False),
    Column("department", Text),  # officers only
    Column("status", String(16), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("totp_secret", LargeBinary),  # SM2 ciphertext (DER) of the secret
    Column("totp_key_id", String(36)),  # hsm_keys.id of the key that decrypts it
    Column("totp_confirmed_at", DateTime(timezone=True)),  # NULL: enrolled, first code not yet shown
    Column("totp_last_step", Integer),  # the last time step accepted: no replay
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("kind", "identifier", name="uq_identity_subject_identifier"),
    CheckConstraint(f"kind IN ({', '.join(repr(k) for k in KINDS)})", name="ck_identity_subject_kind"),
    CheckConstraint(f"assurance_level IN ({', '.join(repr(v) for v in LEVELS)})", name="ck_identity_subject_level"),
    CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name="ck_identity_subject_status"),
)

identity_role = Table(
    "identity_role", Base.metadata,
    Column("subject_id", String(32), ForeignKey("identity_subject.id"), primary_key=True),
    Column("role", String(32), primary_key=True),
)

# The natural persons authorised to act for a legal person (经办人), with what they may do.
identity_representative = Table(
    "identity_representative", Base.metadata,
    Column("legal_person_id", String(32), ForeignKey("identity_subject.id"), primary_key=True),
    Column("person_id", String(32), ForeignKey("identity_subject.id"), primary_key=True),
    Column("scope", Text, nullable=False),  # space-separated, sorted
    Column("until", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Failed logins counted per account ("account:<username>", "totp:<subject id>") and per
# client address ("address:<ip>"), shared by every worker through the database.
identity_throttle = Table(
    "identity_throttle", Base.metadata,
    Column("key", String(200), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("first_failure_at", DateTime(timezone=True), nullable=False),
    Column("locked_until", DateTime(timezone=True)),
)

# Browsers that have logged in to an account before (OWASP's device cookie): a stranger's
# failures on the account or from the address never lock them out. The browser holds a
# random token; the database keeps its SM3 hash.
identity_device = Table(
    "identity_device", Base.metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("subject_id", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_identity_device_subject", "subject_id"),
)

identity_login_session = Table(
    "identity_login_session", Base.metadata,
    Column("id", String(32), primary_key=True),
    Column("cookie_hash", String(64), nullable=False, unique=True),  # SM3 of the cookie value, hex
    Column("subject_id", String(32), nullable=False),
    Column("auth_time", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),  # the absolute timeout
    Column("amr", Text, nullable=False),  # space-separated (RFC 8176 values)
    Column("acr", String(200), nullable=False),
    Column("address", String(64), nullable=False),
    Index("ix_identity_login_session_subject", "subject_id"),
)
