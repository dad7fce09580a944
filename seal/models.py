"""The tables of the seal registry: one row per seal, its status history, and who may use it.

A seal's signing key stays in the KeyStore (``holder_key_id`` names it); the row keeps the
certificates and the made SES_Seal (``seal_der``), so signing needs no re-encoding.
"""

from sqlalchemy import CheckConstraint, Column, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Table, Text

from trust.db import Base

SEAL_STATUSES = ("applied", "approved", "made", "active", "suspended", "revoked", "expired", "destroyed")
SEAL_TYPES = ("official", "contract", "finance", "approval", "personal", "other")
_STATUS_LIST = ", ".join(f"'{s}'" for s in SEAL_STATUSES)
_TYPE_LIST = ", ".join(f"'{t}'" for t in SEAL_TYPES)

seal_registry = Table(
    "seal_registry", Base.metadata,
    Column("es_id", String(32), primary_key=True),
    Column("holder_name", Text, nullable=False),
    Column("holder_uscc", String(18), nullable=False),
    Column("seal_type", String(16), nullable=False),
    Column("name", Text, nullable=False),
    Column("picture_type", String(8), nullable=False),
    Column("picture", LargeBinary, nullable=False),
    Column("picture_width_mm", Integer, nullable=False),
    Column("picture_height_mm", Integer, nullable=False),
    Column("holder_certificate", LargeBinary, nullable=False),  # DER of the signing certificate
    Column("holder_key_id", String(36)),  # hsm_keys.id; NULL for an imported seal we cannot sign with
    Column("maker_certificate", LargeBinary),  # DER, once made
    Column("seal_der", LargeBinary),  # the SES_Seal, once made or imported
    Column("valid_from", DateTime(timezone=True), nullable=False),
    Column("valid_to", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),
    Column("origin", String(8), nullable=False),  # "made" here or "imported"
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("status_changed_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(f"status IN ({_STATUS_LIST})", name="ck_seal_registry_status"),
    CheckConstraint(f"seal_type IN ({_TYPE_LIST})", name="ck_seal_registry_type"),
    CheckConstraint("origin IN ('made', 'imported')", name="ck_seal_registry_origin"),
    Index("ix_seal_registry_holder", "holder_uscc", "status"),
)

seal_status_history = Table(
    "seal_status_history", Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("es_id", String(32), ForeignKey("seal_registry.es_id"), nullable=False),
    Column("from_status", String(16)),  # NULL for the first entry
    Column("to_status", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Index("ix_seal_status_history_es_id", "es_id"),
)

# Who may use a seal: client applications (OAuth client_id) and operators (subject ids).
seal_authorisation = Table(
    "seal_authorisation", Base.metadata,
    Column("es_id", String(32), ForeignKey("seal_registry.es_id"), primary_key=True),
    Column("kind", String(8), primary_key=True),  # "client" | "operator"
    Column("principal", String(255), primary_key=True),
    CheckConstraint("kind IN ('client', 'operator')", name="ck_seal_authorisation_kind"),
)
