"""The verification report every verifier returns (ARCHITECTURE.md, "Verification reports").

A report explains every decision: each signature carries a list of checks from a fixed
vocabulary, each with a status and a reason in Chinese and English. Statuses are derived,
never set by hand: a signature is VALID only if every check PASSED or is NOT_APPLICABLE,
INVALID if any check FAILED, otherwise INDETERMINATE; the document takes the worst of its
signatures, and a document with no signature is INDETERMINATE with a warning.
"""

from dataclasses import dataclass, field
from enum import StrEnum


class CheckName(StrEnum):
    FORMAT = "format"              # the structure parses
    INTEGRITY = "integrity"        # reference digests, data hash, byte range
    SIGNATURE = "signature"        # the cryptographic value over the signed bytes
    SEAL = "seal"                  # the seal structure and its maker's signature
    SEAL_BINDING = "seal_binding"  # Seal.esl is the embedded seal; the signer is in its cert list
    SEAL_VALIDITY = "seal_validity"  # seal period and status
    CERTIFICATE = "certificate"    # signer certificate valid at signing time, key usage
    CHAIN = "chain"                # to a trusted root for the purpose
    REVOCATION = "revocation"
    TIMESTAMP = "timestamp"
    SCOPE = "scope"                # what the signature covers and what it leaves out
    LICENCE_STATUS = "licence_status"  # the licence's status in its issuer's registry (licence/verify.py)


class CheckStatus(StrEnum):
    PASSED = "PASSED"
    FAILED = "FAILED"
    WARNING = "WARNING"
    INDETERMINATE = "INDETERMINATE"
    NOT_APPLICABLE = "NOT_APPLICABLE"


class Status(StrEnum):
    VALID = "VALID"
    INVALID = "INVALID"
    INDETERMINATE = "INDETERMINATE"


_SEVERITY = {Status.VALID: 0, Status.INDETERMINATE: 1, Status.INVALID: 2}


@dataclass(frozen=True)
class Message:
    zh: str
    en: str

    def to_dict(self) -> dict:
        return {"zh": self.zh, "en": self.en}


@dataclass(frozen=True)
class Check:
    check: CheckName
    status: CheckStatus
    reason: Message

    def to_dict(self) -> dict:
        return {"check": self.check.value, "status": self.status.value, "reason": self.reason.to_dict()}


def check(name: CheckName, status: CheckStatus, zh: str, en: str) -> Check:
    return Check(name, status, Message(zh, en))


@dataclass(frozen=True)
class SignatureReport:
    id: str
    type: str                      # "Seal", "Sign", "SES", "PAdES", ...
    checks: tuple[Check, ...]
    signer: str | None = None      # subject of the signer certificate
    seal: dict | None = None       # {"esID": ..., "name": ..., "version": 4}
    signing_time: str | None = None  # ISO 8601 UTC, "…Z"
    level: str | None = None       # the PAdES baseline level reached: "B-B", "B-T", "B-LT", "B-LTA"

    @property
    def status(self) -> Status:
        statuses = {c.status for c in self.checks}
        if CheckStatus.FAILED in statuses:
            return Status.INVALID
        if statuses <= {CheckStatus.PASSED, CheckStatus.NOT_APPLICABLE} and CheckStatus.PASSED in statuses:
            return Status.VALID
        return Status.INDETERMINATE

    def check_status(self, name: CheckName) -> CheckStatus | None:
        """The status of the named check (the worst, if a verifier reported it twice)."""
        found = [c.status for c in self.checks if c.check == name]
        for status in (CheckStatus.FAILED, CheckStatus.INDETERMINATE, CheckStatus.WARNING,
                       CheckStatus.PASSED, CheckStatus.NOT_APPLICABLE):
            if status in found:
                return status
        return None

    def to_dict(self) -> dict:
        return {"id": self.id, "type": self.type, "status": self.status.value, "signer": self.signer,
                "seal": self.seal, "signing_time": self.signing_time,
                **({"level": self.level} if self.level else {}),
                "checks": [c.to_dict() for c in self.checks]}


NO_SIGNATURE = Message("文件中没有签名或签章", "the file carries no signature")


@dataclass(frozen=True)
class Report:
    format: str                    # "ofd" | "pdf" | "ses" | "seal" | "cms" | "sm2" | "cert" | "qr"
    signatures: tuple[SignatureReport, ...]
    warnings: tuple[Message, ...] = field(default=())
    licence: dict | None = None    # a licence's report: what it is and its status (licence/verify.py)

    @property
    def status(self) -> Status:
        if not self.signatures:
            return Status.INDETERMINATE
        return max((s.status for s in self.signatures), key=_SEVERITY.__getitem__)

    def to_dict(self) -> dict:
        warnings = self.warnings if self.signatures else (NO_SIGNATURE, *self.warnings)
        out: dict[str, object] = {"status": self.status.value, "format": self.format}
        if self.licence is not None:
            out["licence"] = self.licence
        return {**out, "signatures": [s.to_dict() for s in self.signatures],
                "warnings": [w.to_dict() for w in warnings]}


# `trustctl verify` exit codes (ARCHITECTURE.md): 3 is for input that cannot be read at all.
EXIT_CODES = {Status.VALID: 0, Status.INVALID: 1, Status.INDETERMINATE: 2}
EXIT_UNREADABLE = 3
