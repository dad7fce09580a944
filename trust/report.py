"""The verification report every verifier returns (ARCHITECTURE.md, "Verification reports").

A report explains every decision: each signature carries a list of checks from a fixed
vocabulary, each with a status and a reason in Chinese and English, and, when it did not
pass, a ``code`` a relying party's system can act on without reading prose (``Code``).
Statuses are derived, never set by hand: a signature is VALID only if every check PASSED
or is NOT_APPLICABLE, INVALID if any check FAILED, otherwise INDETERMINATE; the document
takes the worst of its signatures, and a document with no signature is INDETERMINATE with
a warning.
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


class Code(StrEnum):
    """Why a check FAILED or is INDETERMINATE, for machines: ETSI EN 319 102-1's
    sub-indications (§5.1.3) where one fits, and names for what only seals and licences have.
    A check that passed, or only warns, has none."""

    FORMAT_FAILURE = "FORMAT_FAILURE"                  # the structure cannot be read as its standard says
    HASH_FAILURE = "HASH_FAILURE"                      # a digest of the signed data does not match
    SIG_CRYPTO_FAILURE = "SIG_CRYPTO_FAILURE"          # the signature value does not verify
    SIG_CONSTRAINTS_FAILURE = "SIG_CONSTRAINTS_FAILURE"  # verifies, but breaks a rule (key usage, scope, binding)
    NO_SIGNING_CERTIFICATE_FOUND = "NO_SIGNING_CERTIFICATE_FOUND"
    NO_CERTIFICATE_CHAIN_FOUND = "NO_CERTIFICATE_CHAIN_FOUND"  # no path to a root trusted for the purpose
    CHAIN_CONSTRAINTS_FAILURE = "CHAIN_CONSTRAINTS_FAILURE"  # a path, but a CA or name constraint breaks it
    EXPIRED = "EXPIRED"                                # a certificate or seal past its validity at the time
    NOT_YET_VALID = "NOT_YET_VALID"
    REVOKED = "REVOKED"                                # a certificate revoked at the time that counts
    TRY_LATER = "TRY_LATER"                            # revocation data could not be had now
    NO_POE = "NO_POE"                                  # no proof the signature existed before an event
    TIMESTAMP_FAILURE = "TIMESTAMP_FAILURE"            # a time stamp that does not verify or does not fit
    SEAL_SUSPENDED = "SEAL_SUSPENDED"                  # the seal's registry: suspended at the time
    SEAL_REVOKED = "SEAL_REVOKED"                      # the seal's registry: revoked, destroyed, never in use
    LICENCE_NOT_VALID = "LICENCE_NOT_VALID"            # the licence's registry: suspended, revoked, annulled…
    LICENCE_UNKNOWN = "LICENCE_UNKNOWN"                # the issuer's registry does not know the licence
    GENERIC = "GENERIC"                                # none of the above says it better; the reason does


# The code a check takes from its name when the place that makes it gives none: what a
# failure of that check means, unless the place says something more exact.
_FAILED = {
    CheckName.FORMAT: Code.FORMAT_FAILURE, CheckName.INTEGRITY: Code.HASH_FAILURE,
    CheckName.SIGNATURE: Code.SIG_CRYPTO_FAILURE, CheckName.SEAL: Code.SIG_CRYPTO_FAILURE,
    CheckName.SEAL_BINDING: Code.SIG_CONSTRAINTS_FAILURE, CheckName.SEAL_VALIDITY: Code.SEAL_REVOKED,
    CheckName.CERTIFICATE: Code.SIG_CONSTRAINTS_FAILURE, CheckName.CHAIN: Code.CHAIN_CONSTRAINTS_FAILURE,
    CheckName.REVOCATION: Code.REVOKED, CheckName.TIMESTAMP: Code.TIMESTAMP_FAILURE,
    CheckName.SCOPE: Code.SIG_CONSTRAINTS_FAILURE, CheckName.LICENCE_STATUS: Code.LICENCE_NOT_VALID,
}
_INDETERMINATE = {
    CheckName.CERTIFICATE: Code.NO_SIGNING_CERTIFICATE_FOUND, CheckName.CHAIN: Code.NO_CERTIFICATE_CHAIN_FOUND,
    CheckName.REVOCATION: Code.TRY_LATER, CheckName.TIMESTAMP: Code.NO_POE,
    CheckName.LICENCE_STATUS: Code.LICENCE_UNKNOWN,
}


def default_code(name: CheckName, status: "CheckStatus") -> Code | None:
    if status == CheckStatus.FAILED:
        return _FAILED[name]
    if status == CheckStatus.INDETERMINATE:
        return _INDETERMINATE.get(name, Code.GENERIC)
    return None


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
    code: Code | None = None   # given where the check is made, else default_code; None when it passed

    def __post_init__(self) -> None:
        if self.status in (CheckStatus.FAILED, CheckStatus.INDETERMINATE):
            if self.code is None:
                object.__setattr__(self, "code", default_code(self.check, self.status))
        elif self.code is not None:
            raise ValueError(f"a {self.status} check has no code")

    def to_dict(self) -> dict:
        return {"check": self.check.value, "status": self.status.value, "code": self.code and self.code.value,
                "reason": self.reason.to_dict()}


def check(name: CheckName, status: CheckStatus, *, zh: str, en: str, code: Code | None = None) -> Check:
    """A check made here; the words by name, so the two languages cannot be swapped unseen."""
    return Check(name, status, Message(zh=zh, en=en), code)


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
