"""One error hierarchy for the whole service.

Every error carries a stable ``code`` and a message in Chinese (what a citizen or officer
reads) and in English (what an operator reads). The API maps codes to HTTP statuses in
one place (``api.problems``); nothing else needs to know about HTTP.
"""


class TrustError(Exception):
    """Base of every error this service raises on purpose."""

    code = "internal_error"

    def __init__(self, en: str, zh: str | None = None):
        super().__init__(en)
        self.en = en
        self.zh = zh or en

    def __str__(self) -> str:
        return self.en


class InvalidInput(TrustError):
    """Malformed or out-of-range input: a key, signature, point, length, OID, identifier."""

    code = "invalid_input"


class InvalidSignature(TrustError):
    """A well-formed signature that does not verify."""

    code = "invalid_signature"


class DecryptionFailed(TrustError):
    """A well-formed ciphertext that cannot be decrypted (wrong key, altered, C3 mismatch)."""

    code = "decryption_failed"


class UnsupportedAlgorithm(InvalidInput):
    """An algorithm name or OID this service does not implement."""

    code = "unsupported_algorithm"


class NotFound(TrustError):
    code = "not_found"


class KeyUnavailable(TrustError):
    """A key or the device holding it cannot be used now (wrong PIN, missing module, KEK)."""

    code = "key_unavailable"


class StorageError(TrustError):
    code = "storage_error"


class AuditChainBroken(TrustError):
    code = "audit_chain_broken"


class PermissionDenied(TrustError):
    """The caller is known but not allowed to do this: an unknown or revoked officer
    credential, a token without the scope, a client not authorised for a seal."""

    code = "permission_denied"


class Unauthenticated(TrustError):
    """No credential, or one that does not prove who the caller is (HTTP 401)."""

    code = "unauthenticated"


class InvalidToken(Unauthenticated):
    """A bearer token that is malformed, expired, revoked, for another audience or signed
    by a key or algorithm we do not accept (RFC 6750 ``invalid_token``)."""

    code = "invalid_token"
