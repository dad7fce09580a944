"""The tables of the licence authority: type versions, issuers, licences, their history,
the serial counters and the idempotency keys of issuing clients.

A licence row keeps the canonical record (what was decided) and the sealed OFD with its
SM3, so a later PDF, QR or sharing view is made from the row without touching the OFD.
"""

from sqlalchemy import (
    CheckConstraint,
    Column,
    Date,
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

STATUSES = ("01", "02", "03", "04", "05", "06", "07", "99")
_STATUS_LIST = ", ".join(f"'{s}'" for s in STATUSES)

licence_type = Table(
    "licence_type", Base.metadata,
    Column("type_code", String(21), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("definition", Text, nullable=False),          # canonical JSON (licence.catalogue.canonical_json)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),
)

# Who issues a type: the issuing organisation, the seal it seals with, the clients it issues through.
licence_issuer = Table(
    "licence_issuer", Base.metadata,
    Column("type_code", String(21), primary_key=True),
    Column("issuer_code", String(18), primary_key=True),
    Column("issuer_name", Text, nullable=False),
    Column("area_code", String(6)),
    Column("es_id", String(32), ForeignKey("seal_registry.es_id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("pdf_key_id", String(36)),                     # the KeyStore key its PDFs are signed with (PAdES)
)

licence_issuer_client = Table(
    "licence_issuer_client", Base.metadata,
    Column("type_code", String(21), primary_key=True),
    Column("issuer_code", String(18), primary_key=True),
    Column("client_id", String(255), primary_key=True),
)

licence_serial = Table(
    "licence_serial", Base.metadata,
    Column("type_code", String(21), primary_key=True),
    Column("issuer_code", String(18), primary_key=True),
    Column("last", Integer, nullable=False),
)

licences = Table(
    "licence", Base.metadata,
    Column("licence_id", String(128), primary_key=True),
    Column("base", String(120), nullable=False),          # type.issuer.serial: shared by every version
    Column("version", Integer, nullable=False),
    Column("type_code", String(21), nullable=False),
    Column("type_version", Integer, nullable=False),
    Column("issuer_code", String(18), nullable=False),
    Column("holder_code", String(18), nullable=False),
    Column("licence_no", Text, nullable=False),
    Column("issue_date", Date, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date),                             # NULL: 长期
    Column("record", Text, nullable=False),               # the canonical licence record (JSON)
    Column("status", String(2), nullable=False),
    Column("supersedes", String(128)),
    Column("superseded_by", String(128)),
    Column("es_id", String(32), nullable=False),
    Column("ofd", LargeBinary, nullable=False),
    Column("ofd_sm3", String(64), nullable=False),
    Column("pdf", LargeBinary),                           # the signed PDF, when its issuer has a PDF key
    Column("pdf_sm3", String(64)),  # of the signed revision: later document time stamps keep it
    Column("client_id", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("status_changed_at", DateTime(timezone=True), nullable=False),
    Column("status_list", Integer),                       # its Token Status List (licence/status_list.py)
    Column("status_index", Integer),                      # random within the list (herd privacy)
    Column("qr_text", Text),                              # what its QR code holds (licence/qr_payload.py)
    Column("qr_kid", String(16)),                         # hex kid of the QR key that signed it; NULL: URL only
    CheckConstraint(f"status IN ({_STATUS_LIST})", name="ck_licence_status"),
    UniqueConstraint("status_list", "status_index", name="uq_licence_status_slot"),
    Index("ix_licence_base", "base", "version", unique=True),
    Index("ix_licence_issuer", "issuer_code", "created_at"),
    Index("ix_licence_holder", "holder_code"),
)

licence_history = Table(
    "licence_history", Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("licence_id", String(128), ForeignKey("licence.licence_id"), nullable=False),
    Column("operation", String(2), nullable=False),       # national operation code (spec §8)
    Column("from_status", String(2)),
    Column("to_status", String(2), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Index("ix_licence_history_licence", "licence_id"),
)

licence_idempotency = Table(
    "licence_idempotency", Base.metadata,
    Column("client_id", String(255), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_sm3", String(64), nullable=False),
    Column("licence_id", String(128), ForeignKey("licence.licence_id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# The keys licence QR payloads are signed with (licence/qr_keys.py), one current per issuer;
# a rotated key stays, retired, so that the QR codes it signed keep verifying.
licence_qr_key = Table(
    "licence_qr_key", Base.metadata,
    Column("key_id", String(36), primary_key=True),          # the KeyStore key (usage qr)
    Column("issuer_code", String(18), nullable=False, index=True),
    Column("algorithm", String(32), nullable=False),
    Column("kid", String(16), nullable=False, index=True),   # hex of the 8-byte COSE kid
    Column("spki", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("retired_at", DateTime(timezone=True)),
)

# A department application that uses licences (licence/sharing.py): the types and purposes it
# was registered for (JSON lists); its client is identity/'s.
licence_consumer = Table(
    "licence_consumer", Base.metadata,
    Column("client_id", String(64), primary_key=True),
    Column("types", Text, nullable=False),
    Column("purposes", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),
)

# A licence converted from an existing (paper) one by licence/conversion.py, with its source;
# unique by type and licence number, so that no existing licence is converted twice.
licence_conversion = Table(
    "licence_conversion", Base.metadata,
    Column("licence_id", String(128), primary_key=True),
    Column("type_code", String(21), nullable=False),
    Column("licence_no", Text, nullable=False),
    Column("source", Text, nullable=False),               # the operator's words: which archive, which batch
    Column("file_name", Text, nullable=False),
    Column("file_sha256", String(64), nullable=False),
    Column("source_row", Integer, nullable=False),        # as a spreadsheet counts: the header is row 1
    Column("image_sha256", String(64)),                   # of the scanned paper licence, when the row gives it
    Column("operator", Text, nullable=False),
    Column("converted_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("type_code", "licence_no", name="uq_licence_conversion_number"),
)

# A holder's consent (licence/sharing.py) that a consumer receive the licence's 有条件 fields
# for one purpose until a time; withdrawn when the holder says so.
licence_consent = Table(
    "licence_consent", Base.metadata,
    Column("id", String(36), primary_key=True),
    Column("holder_code", String(18), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("purpose", Text, nullable=False),
    Column("until", DateTime(timezone=True), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Column("granted_by", Text, nullable=False),
    Column("withdrawn_at", DateTime(timezone=True)),
    Index("ix_licence_consent_holder", "holder_code", "client_id"),
)

# Each use of a licence through the sharing service (licence/sharing.py): what the holder's
# wallet shows and what the usage counts (使用频度) are made from; the audit log holds the same.
licence_use = Table(
    "licence_use", Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("action", String(16), nullable=False),          # query | compare
    Column("holder_code", String(18), nullable=False),
    Column("licence_id", String(128)),
    Column("type_code", String(21)),
    Column("purpose", Text, nullable=False),
    Column("operator", Text),
    Column("fields", Text, nullable=False),               # JSON: the field keys released or compared
    Index("ix_licence_use_holder", "holder_code", "at"),
)

# Each (presentation, verifier nonce) pair checked (licence/presentation.py): a presentation
# is accepted once per verifier nonce.
licence_presentation_use = Table(
    "licence_presentation_use", Base.metadata,
    Column("presentation", String(32), primary_key=True),
    Column("nonce", String(64), primary_key=True),
    Column("used_at", DateTime(timezone=True), nullable=False),
)

# A consumer's request for a licence's 有条件 fields (licence/share_requests.py), answered by
# the issuing department: pending, then approved until a time or refused, with the reason.
licence_request = Table(
    "licence_request", Base.metadata,
    Column("id", String(36), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("purpose", Text, nullable=False),
    Column("operator", Text),
    Column("reason", Text, nullable=False),               # why the consumer needs the fields
    Column("days", Integer, nullable=False),              # the period asked for
    Column("licence_id", String(128), nullable=False),    # as asked; the approval holds for every version
    Column("base", String(120), nullable=False),
    Column("holder_code", String(18), nullable=False),
    Column("type_code", String(21), nullable=False),
    Column("issuer_code", String(18), nullable=False),
    Column("status", String(10), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("answered_at", DateTime(timezone=True)),
    Column("answered_by", Text),
    Column("answer", Text),                               # the officer's words
    Column("until", DateTime(timezone=True)),             # an approval's end
    CheckConstraint("status IN ('pending', 'approved', 'refused')", name="ck_licence_request_status"),
    Index("ix_licence_request_issuer", "issuer_code", "status"),
    Index("ix_licence_request_use", "base", "client_id"),
)

# A bulk conversion submitted over HTTP (licence/imports.py): the file kept until the job is
# done, so that a job cut short resumes; its progress counters and heartbeat.
licence_import = Table(
    "licence_import", Base.metadata,
    Column("id", String(36), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("type_code", String(21), nullable=False),
    Column("issuer_code", String(18), nullable=False),
    Column("source", Text, nullable=False),
    Column("file_name", Text, nullable=False),
    Column("file_sha256", String(64), nullable=False),
    Column("data", LargeBinary),                          # dropped when the job is done
    Column("status", String(10), nullable=False),
    Column("message", Text),                              # why a job failed as a whole
    Column("total", Integer, nullable=False),
    Column("converted", Integer, nullable=False),
    Column("done_before", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("heartbeat_at", DateTime(timezone=True)),
    Column("runner", String(32)),                         # who took it last: a claim compares and sets it
    Column("finished_at", DateTime(timezone=True)),
    CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="ck_licence_import_status"),
    Index("ix_licence_import_client", "client_id", "file_sha256"),
)

# The rows an import job could not convert: its error report.
licence_import_error = Table(
    "licence_import_error", Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("import_id", String(36), nullable=False),
    Column("row", Integer, nullable=False),
    Column("field", Text, nullable=False),
    Column("zh", Text, nullable=False),
    Column("en", Text, nullable=False),
    Index("ix_licence_import_error_job", "import_id", "row"),
)
