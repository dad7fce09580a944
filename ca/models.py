"""The tables of the certificate authority: the CAs, every certificate they issued, and the
escrowed encryption keys of dual certificates.

A CA's private key stays in the KeyStore (``key_id`` names it). Serials are kept as the
decimal text of a positive integer: 16 random bytes do not fit a database BIGINT.
"""

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from trust.db import Base

ca_authority = Table(
    "ca_authority", Base.metadata,
    Column("name", String(64), primary_key=True),  # "sm2-root", "sm2-issuing"
    Column("family", String(8), nullable=False),
    Column("parent", String(64), ForeignKey("ca_authority.name")),  # NULL for a root
    Column("key_id", String(36), nullable=False),  # hsm_keys.id
    Column("certificate", LargeBinary, nullable=False),  # DER
    Column("crl_number", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("crl", LargeBinary),  # DER; a root's last CRL, signed under dual control (NULL for issuing CAs)
    CheckConstraint("family IN ('sm2', 'ecdsa', 'rsa')", name="ck_ca_authority_family"),
)

ca_certificate = Table(
    "ca_certificate", Base.metadata,
    Column("issuer", String(64), ForeignKey("ca_authority.name"), primary_key=True),
    Column("serial", String(64), primary_key=True),  # unique per issuer: (issuer, serial) is the key
    Column("subject", Text, nullable=False),
    Column("profile", String(32), nullable=False),
    Column("der", LargeBinary, nullable=False),
    Column("not_before", DateTime(timezone=True), nullable=False),
    Column("not_after", DateTime(timezone=True), nullable=False),
    Column("status", String(8), nullable=False, server_default="good"),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revocation_reason", String(32)),  # RFC 5280 CRLReason name, e.g. "keyCompromise"
    Column("key_id", String(36)),  # hsm_keys.id when the key was generated in the KeyStore
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("status IN ('good', 'revoked')", name="ck_ca_certificate_status"),
    Index("ix_ca_certificate_status", "issuer", "status"),
)

# 密钥托管: the encryption private keys of dual certificates, each kept as an SM2 envelope
# (SM2EnvelopedKey) addressed to the issuing CA's escrow key, which the KeyStore holds
# (label "escrow/<ca name>", usage "escrow"). Signing keys are never escrowed.
ca_escrow = Table(
    "ca_escrow", Base.metadata,
    Column("issuer", String(64), primary_key=True),
    Column("serial", String(64), primary_key=True),  # the encryption certificate's
    Column("signing_serial", String(64), nullable=False),  # the applicant's signing certificate
    Column("escrow_key_id", String(36), nullable=False),
    Column("envelope", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("recovered_at", DateTime(timezone=True)),  # the last lawful recovery
    ForeignKeyConstraint(["issuer", "serial"], ["ca_certificate.issuer", "ca_certificate.serial"],
                         name="fk_ca_escrow_certificate"),
)
