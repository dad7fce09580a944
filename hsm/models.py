"""The tables of key custody: one row per key version, and the key-encryption keys.

A row never holds a private key in clear: software keys are kept wrapped under a KEK
(``wrapped_key``), token keys stay in the token and the row names them (``handle``). The
public key is kept in every row, so verification works with the device or KEK away and
after the private key is destroyed.
"""

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from trust.db import Base

KEY_STATES = ("pre-active", "active", "suspended", "deactivated", "compromised", "destroyed")
_STATE_LIST = ", ".join(f"'{s}'" for s in KEY_STATES)

hsm_keys = Table(
    "hsm_keys", Base.metadata,
    Column("id", String(36), primary_key=True),
    Column("label", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("backend", String(16), nullable=False),
    Column("handle", Text, nullable=False),
    Column("algorithm", Text, nullable=False),
    Column("usages", Text, nullable=False),  # space-separated, sorted
    Column("state", String(16), nullable=False),
    Column("exportable", Boolean, nullable=False),
    Column("public_key", LargeBinary, nullable=False),  # SubjectPublicKeyInfo DER
    Column("wrapped_key", LargeBinary),  # soft: nonce ‖ ciphertext ‖ tag of the PKCS#8
    Column("wrap_cipher", String(16)),  # "AES-256-GCM" | "SM4-GCM"
    Column("kek_id", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("activated_at", DateTime(timezone=True)),
    Column("suspended_at", DateTime(timezone=True)),
    Column("deactivated_at", DateTime(timezone=True)),
    Column("compromised_at", DateTime(timezone=True)),
    Column("destroyed_at", DateTime(timezone=True)),
    Column("state_changed_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("label", "version", name="uq_hsm_keys_label_version"),
    CheckConstraint(f"state IN ({_STATE_LIST})", name="ck_hsm_keys_state"),
)

# The KEKs the soft backend has used; the one not retired wraps new keys. Old ones stay
# listed so a row still wrapped under one (a rotation that did not commit) can be named.
hsm_keks = Table(
    "hsm_keks", Base.metadata,
    Column("kek_id", String(200), primary_key=True),
    Column("source", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("retired_at", DateTime(timezone=True)),
)
