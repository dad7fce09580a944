"""Passwords and client secrets: argon2id PHC strings with at least OWASP's parameters,
checked against the reference argon2 implementation's own verifier."""

import base64

import pytest
from argon2 import PasswordHasher, Type
from argon2.low_level import hash_secret_raw, verify_secret as reference_verify
from hypothesis import given, settings, strategies as st

from identity import passwords
from trust.errors import InvalidInput


def _phc(stored: str) -> tuple[dict, bytes, bytes]:
    _, variant, version, params, salt, digest = stored.split("$")
    assert variant == "argon2id" and version == "v=19"
    values = dict(p.split("=") for p in params.split(","))
    b64 = lambda s: base64.b64decode(s + "=" * (-len(s) % 4))  # noqa: E731
    return {k: int(v) for k, v in values.items()}, b64(salt), b64(digest)


def test_hash_is_argon2id_with_owasp_parameters():
    stored = passwords.hash_secret("correct horse battery staple")
    params, salt, digest = _phc(stored)
    # OWASP Password Storage Cheat Sheet: argon2id, m >= 19 MiB, t >= 2, p = 1.
    assert params["m"] >= 19 * 1024 and params["t"] >= 2 and params["p"] >= 1
    assert len(salt) >= 16 and len(digest) >= 32
    assert reference_verify(stored.encode(), b"correct horse battery staple", Type.ID)
    # Recompute the digest from the PHC fields with the reference implementation.
    assert hash_secret_raw(b"correct horse battery staple", salt, params["t"], params["m"], params["p"],
                           len(digest), Type.ID) == digest


def test_salts_differ_and_verify():
    a, b = passwords.hash_secret("秘密口令-1234"), passwords.hash_secret("秘密口令-1234")
    assert a != b
    assert passwords.verify_secret(a, "秘密口令-1234") and passwords.verify_secret(b, "秘密口令-1234")
    assert not passwords.verify_secret(a, "秘密口令-1235")
    assert not passwords.needs_rehash(a)


def test_weaker_hash_verifies_and_needs_rehash():
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("old password")
    assert passwords.verify_secret(weak, "old password")
    assert passwords.needs_rehash(weak)


@pytest.mark.parametrize("stored", ["", "plain", "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
                                    "$argon2id$v=19$m=8,t=1,p=1$!!$!!", "$2b$12$abcdefghijklmnopqrstuv"])
def test_bad_stored_values_give_false(stored):
    assert passwords.verify_secret(stored, "whatever") is False


def test_bad_secrets_give_false_and_refuse_to_hash():
    stored = passwords.hash_secret("x" * 12)
    for secret in ("", None, 12, b"x" * 12, "x" * (passwords.MAX_SECRET_CHARS + 1)):
        assert passwords.verify_secret(stored, secret) is False
    for secret in ("", None, "x" * (passwords.MAX_SECRET_CHARS + 1)):
        with pytest.raises(InvalidInput):
            passwords.hash_secret(secret)


@settings(max_examples=40, deadline=None)
@given(stored=st.text(max_size=200), secret=st.text(max_size=50))
def test_verify_never_raises(stored, secret):
    assert passwords.verify_secret("$argon2id$" + stored, secret) is False
    assert passwords.verify_secret(stored, secret) is False
