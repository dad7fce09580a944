"""licence/qr_keys.py (issue #16, second slice): issuers' QR keys rotate with the old ones kept,
retired, in a key list signed by a licence-list certificate of our SM2 CA that travels with
it; a verifier with only the root trusts the list, and no rotation turns a good QR code
invalid, whichever of three cached lists the verifier holds."""

from datetime import UTC, date, datetime, timedelta

import pytest

from ca import authority
from licence import identifier, qr_keys, qr_payload
from licence.qr_payload import PREFIX, PayloadError
from trust import base45
from trust.db import session_factory
from trust.report import CheckName as C, CheckStatus as S

ISSUER = "111100003AGYGLUY2Q"
FACE = (("name", "名称", "福州测试科技有限公司"),)
SERVICE = "https://trust.example.gov.cn"
PER_GENERATION = 100


def _claims(serial: int):
    licence_id = identifier.build("11100000MB0143028R001", ISSUER, f"2026{serial:07d}", 1)
    return qr_payload.new_claims(licence_id=str(licence_id), issuer_code=ISSUER, version=1,
                                 issued_at=datetime(2026, 12, 7, tzinfo=UTC), valid_from=date(2026, 12, 7),
                                 valid_to=None, face=FACE, holder_name="福州测试科技有限公司",
                                 holder_code="91350100M000100Y43")


@pytest.fixture(scope="module")
def generations(ca):
    """Two generations of the issuer's key, a hundred payloads signed by each, and the key list as
    a verifier cached it before the rotation, after it, and after a third key."""
    engine, keystore = ca[0], ca[1]
    with session_factory(engine)() as session:
        qr_keys.set_up_list_signer(session, keystore, actor="test")
        sm2_root = authority.get_authority(session, "sm2-root").certificate
        qr_keys.rotate(session, keystore, ISSUER, actor="test")
        first = [_sign(session, keystore, n) for n in range(PER_GENERATION)]
        before = qr_keys.key_list(session, keystore, public_url=SERVICE)
        qr_keys.rotate(session, keystore, ISSUER, algorithm="es256", actor="test")
        second = [_sign(session, keystore, n) for n in range(PER_GENERATION, 2 * PER_GENERATION)]
        after = qr_keys.key_list(session, keystore, public_url=SERVICE)
        qr_keys.rotate(session, keystore, ISSUER, actor="test")
        latest = qr_keys.key_list(session, keystore, public_url=SERVICE)
        session.commit()
    return {"root": sm2_root, "first": first, "second": second, "lists": (before, after, latest)}


def _sign(session, keystore, serial: int) -> str:
    return qr_payload.sign(session, keystore, qr_keys.current(session, keystore, ISSUER), _claims(serial))


def test_rotation_keeps_the_old_key_listed_and_retired(ca, generations):
    with session_factory(ca[0])() as session:
        found = qr_keys.listed(session)
    mine = [k for k in found if k.key.issuer_code == ISSUER]
    assert [k.key.algorithm for k in mine] == ["SM2-with-SM3", "ecdsa-with-SHA256", "SM2-with-SM3"]
    assert [k.retired_at is None for k in mine] == [False, False, True]
    listed = qr_keys.read_key_list(generations["lists"][2], trusted_roots=(generations["root"],))
    assert {k.key.kid for k in listed.keys} == {k.key.kid for k in mine}
    assert "Licence key and status lists" in listed.signer and listed.ttl == qr_keys.LIST_TTL


def test_no_rotation_turns_a_good_code_invalid_whichever_list_is_cached(generations):
    """Two hundred codes of two key generations against the lists cached before the rotation, after
    it and after a third key: never a FAILED signature; a code whose key the cached list does
    not know yet is INDETERMINATE, naming the missing kid."""
    outcomes = {}
    for age, data in zip(("before", "after", "latest"), generations["lists"], strict=True):
        keys = [k.key for k in qr_keys.read_key_list(data, trusted_roots=(generations["root"],)).keys]
        for generation in ("first", "second"):
            statuses = {qr_payload.verify(text, keys).signatures[0].check_status(C.SIGNATURE)
                        for text in generations[generation]}
            outcomes[age, generation] = statuses
    assert all(S.FAILED not in statuses for statuses in outcomes.values()), outcomes
    assert outcomes["before", "first"] == {S.PASSED} and outcomes["before", "second"] == {S.INDETERMINATE}
    assert outcomes["after", "first"] == outcomes["after", "second"] == {S.PASSED}
    assert outcomes["latest", "first"] == outcomes["latest", "second"] == {S.PASSED}


def test_a_key_list_that_is_changed_or_not_from_our_root_is_refused(ca, generations):
    data = generations["lists"][1]
    signed = qr_payload.open_cose_sign1(data)
    position = data.index(signed.payload) + len(signed.payload) // 2
    changed = data[:position] + bytes([data[position] ^ 1]) + data[position + 1:]
    with pytest.raises(PayloadError):
        qr_keys.read_key_list(changed, trusted_roots=(generations["root"],))
    with pytest.raises(PayloadError, match="trusted root"):
        qr_keys.read_key_list(data, trusted_roots=(ca[4],))  # the ECDSA root: not the list signer's
    with pytest.raises(PayloadError):
        qr_keys.read_key_list(b"\x00" * 40, trusted_roots=(generations["root"],))


def test_the_key_list_is_deterministic_cbor_of_what_a_verifier_needs(generations):
    value = qr_payload.cbor_value(qr_payload.open_cose_sign1(generations["lists"][0]).payload, "key list")
    [entry] = [e for e in value[3] if e[3] == ISSUER]
    assert entry[2] == qr_payload.ALG_SM2 and len(entry[1]) == 8 and entry[6] is None
    assert value[2] == int(timedelta(days=1).total_seconds()) and value[4] == SERVICE
    assert all(text.startswith(PREFIX) and base45.decode(text[len(PREFIX):]) for text in generations["first"][:1])


def test_a_key_list_past_its_ttl_is_warned_of_never_invalid(generations, tmp_path, monkeypatch):
    """The offline verifier (trustctl verify --qr) with a key list older than its ttl: the code
    still verifies, and the report says how old the list is."""
    from api.cli import verify as cli_verify
    (tmp_path / "keys.cose").write_bytes(generations["lists"][2])
    fresh = cli_verify.verify_qr(generations["first"][0], str(tmp_path / "keys.cose"), (), None, (generations["root"],))
    assert fresh.signatures[0].check_status(C.SIGNATURE) is S.PASSED and not fresh.warnings
    monkeypatch.setattr(cli_verify, "utc_now", lambda: datetime.now(UTC) + timedelta(days=2))
    old = cli_verify.verify_qr(generations["first"][0], str(tmp_path / "keys.cose"), (), None, (generations["root"],))
    assert old.signatures[0].check_status(C.SIGNATURE) is S.PASSED
    assert any("past its ttl" in w.en for w in old.warnings) and "key_list_issued_at" in old.licence
