"""TOTP: RFC 6238 Appendix B known answers, and pyotp (an independent implementation) as
the oracle for codes, URIs and the verification window."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from hypothesis import given, settings, strategies as st

from identity import totp
from trust.errors import InvalidInput

RFC_SECRET = b"12345678901234567890"  # RFC 6238 Appendix B, SHA-1 seed
# (Unix time, 8-digit TOTP) from RFC 6238 Appendix B, SHA-1 rows. A 6-digit code is the
# same truncated value mod 10^6, i.e. the last six digits.
RFC_VECTORS = [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
               (1234567890, "89005924"), (2000000000, "69279037"), (20000000000, "65353130")]


def _at(unix: int) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


@pytest.mark.parametrize(("unix", "expected"), RFC_VECTORS)
def test_rfc6238_appendix_b(unix, expected):
    assert totp.code_at(RFC_SECRET, _at(unix)) == expected[-6:]


@settings(max_examples=60, deadline=None)
@given(secret=st.binary(min_size=16, max_size=64), unix=st.integers(0, 2**34))
def test_codes_match_pyotp(secret, unix):
    assert totp.code_at(secret, _at(unix)) == pyotp.TOTP(totp.base32(secret)).at(unix)


def test_provisioning_uri_is_read_by_pyotp():
    secret = totp.new_secret()
    assert len(secret) == 20
    uri = totp.provisioning_uri(secret, "officer.li", "统一身份认证")
    parsed = pyotp.parse_uri(uri)
    assert parsed.secret == totp.base32(secret) and parsed.name == "officer.li" and parsed.issuer == "统一身份认证"
    assert parsed.digits == 6 and parsed.interval == 30
    query = parse_qs(urlsplit(uri).query)
    assert query["algorithm"] == ["SHA1"] and urlsplit(uri).scheme == "otpauth"
    now = datetime.now(UTC)
    assert totp.code_at(secret, now) == parsed.at(now)


def test_verify_window_and_replay():
    secret = totp.new_secret()
    now = _at(1_700_000_015)
    step = totp.time_step(now)
    oracle = pyotp.TOTP(totp.base32(secret))
    assert totp.verify(secret, oracle.at(now), at=now, last_step=None) == step
    # The previous and next steps are accepted (clock drift), two steps away not.
    assert totp.verify(secret, oracle.at(now - timedelta(seconds=30)), at=now, last_step=None) == step - 1
    assert totp.verify(secret, oracle.at(now + timedelta(seconds=30)), at=now, last_step=None) == step + 1
    assert totp.verify(secret, oracle.at(now - timedelta(seconds=60)), at=now, last_step=None) is None
    assert totp.verify(secret, oracle.at(now - timedelta(seconds=30)), at=now, last_step=None, window=0) is None
    # Replay: a step at or before the last accepted is refused.
    assert totp.verify(secret, oracle.at(now), at=now, last_step=step) is None
    assert totp.verify(secret, oracle.at(now - timedelta(seconds=30)), at=now, last_step=step - 1) is None
    assert totp.verify(secret, oracle.at(now + timedelta(seconds=30)), at=now, last_step=step) == step + 1


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "１２３４５６", " 12345", None, 123456])
def test_malformed_codes_are_refused(code):
    assert totp.verify(totp.new_secret(), code, at=_at(1_700_000_000), last_step=None) is None


def test_bad_arguments():
    with pytest.raises(InvalidInput):
        totp.code_at(b"short", _at(0))
    with pytest.raises(InvalidInput):
        totp.code_at(RFC_SECRET, datetime(2026, 1, 1))  # naive
    with pytest.raises(InvalidInput):
        totp.verify(RFC_SECRET, "123456", at=_at(0), last_step=None, window=100)
    with pytest.raises(InvalidInput):
        totp.provisioning_uri(RFC_SECRET, "a:b", "issuer")


@settings(max_examples=100, deadline=None)
@given(code=st.text(max_size=20), unix=st.integers(0, 2**34))
def test_verify_answers_any_text(code, unix):
    step = totp.verify(RFC_SECRET, code, at=_at(unix), last_step=None)
    assert step is None or totp.code_at(RFC_SECRET, _at(step * totp.STEP_SECONDS)) == code
