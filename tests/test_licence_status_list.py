"""licence/status_list.py (issue #16, third slice): every licence has a random index in a Token
Status List; the list, signed like the key list, says valid, invalid, suspended or superseded;
an offline verifier with the QR payload, the key list and a cached status list reports the
licence VALID, INVALID once revoked with the new list, and VALID with a warning of its age
with the old one."""

import zlib
from datetime import timedelta

import pytest
from hypothesis import given, strategies as st
from sqlalchemy import select

from ca import authority
from licence import qr_keys, qr_payload, registry, status_list
from licence.models import licences
from licence.qr_payload import PayloadError
from trust.clock import utc_now
from trust.db import session_factory
from trust.report import CheckName as C, CheckStatus as S, Status

from tests.fixtures.licence import issue_demo_licence

PUBLIC_URL = "http://127.0.0.1:8000"  # as issue_demo_licence issues


def test_bits_are_packed_as_the_draft_shows():
    statuses = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]  # the draft's 1-bit example
    assert status_list.pack(dict(enumerate(statuses)), 16, bits=1) == bytes([0xB9, 0xA3])
    assert [status_list.unpack(bytes([0xB9, 0xA3]), i, bits=1) for i in range(16)] == statuses


@given(st.dictionaries(st.integers(0, 999), st.integers(0, 3), max_size=200))
def test_two_bit_values_round_trip(values):
    data = status_list.pack(values, 1000)
    assert len(data) == 250
    assert all(status_list.unpack(data, i) == values.get(i, 0) for i in range(1000))


@pytest.fixture(scope="module")
def licensed(ca):
    record, _pdf = issue_demo_licence(ca)
    engine, keystore = ca[0], ca[1]
    with session_factory(engine)() as session:
        row = session.execute(select(licences.c.status_list, licences.c.status_index)
                              .where(licences.c.licence_id == record.licence_id)).one()
        root = authority.get_authority(session, "sm2-root").certificate
        text = record.qr_text  # as issued: the URL form, signed with the demo department's QR key
        keys = [k.key for k in qr_keys.read_key_list(qr_keys.key_list(session, keystore, public_url=PUBLIC_URL), trusted_roots=(root,)).keys]
        first = status_list.token(session, keystore, 1, public_url=PUBLIC_URL)
        session.commit()
    return {"record": record, "index": row.status_index, "root": root, "text": text, "keys": keys, "first": first}


def _list(ca, root):
    with session_factory(ca[0])() as session:
        data = status_list.token(session, ca[1], 1, public_url=PUBLIC_URL)
        session.commit()
    return status_list.read_token(data, trusted_roots=(root,))


def test_an_issued_licence_has_a_random_slot_and_the_list_says_valid(ca, licensed):
    assert 0 <= licensed["index"] < status_list.SIZE
    listed = status_list.read_token(licensed["first"], trusted_roots=(licensed["root"],))
    assert listed.uri == f"{PUBLIC_URL}/api/v1/status-lists/1" and listed.bits == 2
    assert listed.status(licensed["index"]) == status_list.VALID and listed.ttl == status_list.TTL
    assert len(licensed["first"]) < 2000  # 131,072 slots compress to a few hundred bytes
    report = qr_payload.verify(licensed["text"], licensed["keys"], statuses=listed)
    assert report.status is Status.VALID, report.to_dict()
    assert report.signatures[0].check_status(C.LICENCE_STATUS) is S.PASSED and not report.warnings


def test_revoked_is_invalid_with_the_new_list_and_valid_with_a_warning_with_the_old(ca, licensed):
    engine = ca[0]
    old = status_list.read_token(licensed["first"], trusted_roots=(licensed["root"],))
    with session_factory(engine)() as session:
        registry.transition(session, licensed["record"].licence_id, "suspend", actor="test", reason="测试暂扣")
        session.commit()
    suspended = qr_payload.verify(licensed["text"], licensed["keys"], statuses=_list(ca, licensed["root"]))
    assert suspended.status is Status.INVALID and "suspended" in suspended.signatures[0].checks[-1].reason.en
    with session_factory(engine)() as session:
        registry.transition(session, licensed["record"].licence_id, "revoke", actor="test", reason="测试吊销")
        session.commit()
    revoked = qr_payload.verify(licensed["text"], licensed["keys"], statuses=_list(ca, licensed["root"]))
    assert revoked.status is Status.INVALID
    assert revoked.signatures[0].check_status(C.LICENCE_STATUS) is S.FAILED
    later = lambda: utc_now() + timedelta(hours=3)  # noqa: E731 (the old list, three hours on)
    stale = qr_payload.verify(licensed["text"], licensed["keys"], statuses=old, clock=later)
    assert stale.status is Status.VALID and any("past its ttl" in w.en for w in stale.warnings)


def test_a_changed_licences_old_code_reads_superseded_and_the_new_one_valid(ca, licensed):
    """变更: the old version's QR, checked with the list made after the change, fails its
    licence_status naming the new version's supersession; the new version's own code passes."""
    from licence import issuance
    from licence.demo import BUSINESS_LICENCE, DEMO_FACE

    from tests.licence_support import ENTERPRISE_USCC
    engine, keystore = ca[0], ca[1]
    issuer = licensed["record"].record["issuer"]["code"]
    body = {"type_code": BUSINESS_LICENCE, "issuer_code": issuer, "face": DEMO_FACE,
            "holder": {"name": "福州测试科技有限公司", "code": ENTERPRISE_USCC, "code_type": "001"}}
    with session_factory(engine)() as session:
        old, _ = issuance.issue(session, keystore, body, client_id="demo-department-app", verify_url=PUBLIC_URL)
        new = issuance.change(session, keystore, old.licence_id, {"holder": {"name": "福州新名称科技有限公司"}},
                              client_id="demo-department-app", verify_url=PUBLIC_URL, reason="名称变更")
        session.commit()
    listed = _list(ca, licensed["root"])
    stale = qr_payload.verify(old.qr_text, licensed["keys"], statuses=listed)
    assert stale.status is Status.INVALID and stale.signatures[0].check_status(C.SIGNATURE) is S.PASSED
    assert "superseded" in stale.signatures[0].checks[-1].reason.en
    current = qr_payload.verify(new.qr_text, licensed["keys"], statuses=listed)
    assert current.status is Status.VALID and current.licence["holder"]["name"] == "福州新名称科技有限公司"


def test_an_index_outside_the_list_or_another_list_is_indeterminate(licensed):
    listed = status_list.read_token(licensed["first"], trusted_roots=(licensed["root"],))
    small = status_list.StatusList(listed.uri, listed.issued_at, listed.ttl, 2, listed.lst[:10])
    assert qr_payload.verify(licensed["text"], licensed["keys"], statuses=small) \
        .signatures[0].check_status(C.LICENCE_STATUS) is S.INDETERMINATE
    number = listed.uri.rsplit('/', 1)[1]
    other = status_list.StatusList(f"https://elsewhere/api/v1/status-lists/{number}", listed.issued_at, listed.ttl, 2,
                                   listed.lst)
    assert qr_payload.verify(licensed["text"], licensed["keys"], statuses=other) \
        .signatures[0].check_status(C.LICENCE_STATUS) is S.INDETERMINATE


def test_a_bad_status_list_token_is_refused_by_name(ca, licensed):
    data = licensed["first"]
    with pytest.raises(PayloadError, match="trusted root"):
        status_list.read_token(data, trusted_roots=(ca[4],))
    with pytest.raises(PayloadError):
        status_list.read_token(data[:-1] + bytes([data[-1] ^ 1]), trusted_roots=(licensed["root"],))
    bomb = zlib.compress(bytes(50 * 1024 * 1024), 9)  # 50 MB of zeros in ~50 KB
    assert len(bomb) < 100_000
    with pytest.raises(PayloadError, match="beyond"):
        status_list.inflate(bomb)
    with pytest.raises(PayloadError, match="zlib"):
        status_list.inflate(b"not zlib")
