"""Seal making (制章): SES_Seal v4 from the KeyStore, registered; imports verified first.

Oracles: `openssl asn1parse` reads what we make, and OpenSSL verifies the maker's SM2
signature over SES_SealInfo with the maker certificate's key.
"""

import random
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import pem

from hsm import kek
from hsm.keystore import KeyStoreConfig, UsageNotPermitted, open_keystore
from seal import making, registry
from seal.registry import SealStatus
from seal.ses import build_seal_v4, parse_seal
from seal.verify import verify_seal
from trust.errors import InvalidInput, PermissionDenied
from trust.hashes import sm3
from trust.ids import generate_uscc
from trust.report import CheckName, CheckStatus, Status

from tests.certs import Issued, make_leaf, make_root
from tests.fixtures.seal import HOLDER, USCC, new_seal, small_png
from tests.oracles import openssl


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- making

def test_made_seal_parses_back_and_openssl_reads_it(world, tmp_path):
    record = new_seal(world)
    assert record.status == SealStatus.ACTIVE and registry.es_id_ok(record.es_id)
    assert record.es_id[:6] == USCC[2:8] and record.es_id[6:8] == "02"  # region, contract seal
    seal = parse_seal(record.seal)
    info = seal.seal_info
    assert (info.es_id, info.name, info.version, info.vid) == (record.es_id, "深圳市测试局合同专用章", 4, "TRUST")
    assert info.cert_list == (world.holder_cert,) and seal.cert == world.maker_cert
    assert (info.picture_type, info.picture_data) == ("PNG", world.picture.data)
    assert (info.picture_width, info.picture_height) == (40, 40)
    assert seal.warnings == () and seal.raw == record.seal
    parsed = openssl("asn1parse", "-inform", "DER", "-in", str(_write(tmp_path / "seal.esl", record.seal)))
    assert b"1.2.156.10197.1.501" in parsed.stdout or b"SM2-with-SM3" in parsed.stdout


def test_maker_signature_verifies_with_openssl(world, tmp_path):
    record = new_seal(world)
    seal = parse_seal(record.seal)
    _write(tmp_path / "info.der", seal.seal_info.raw)
    _write(tmp_path / "sig.der", seal.signed_value)
    _write(tmp_path / "maker.pem", pem.armor("CERTIFICATE", world.maker_cert))
    openssl("x509", "-in", str(tmp_path / "maker.pem"), "-pubkey", "-noout", "-out", str(tmp_path / "maker.pub"))
    done = openssl("dgst", "-sm3", "-verify", str(tmp_path / "maker.pub"), "-sigopt", "distid:1234567812345678",
                   "-signature", str(tmp_path / "sig.der"), str(tmp_path / "info.der"))
    assert b"Verified OK" in done.stdout


def test_made_seal_is_valid_under_its_root(world):
    record = new_seal(world)
    report = verify_seal(record.seal, trusted_roots=[world.root.cert_der])
    assert report.status == Status.VALID, report.to_dict()


def test_certificate_digest_list(world):
    record = new_seal(world, cert_list_type=2)
    info = parse_seal(record.seal).seal_info
    assert info.cert_list_type == 2 and info.cert_list == ()
    assert [(d.type, d.value) for d in info.cert_digest_list] == [("SM3", sm3(world.holder_cert))]


def test_maker_key_must_match_its_certificate(world):
    with pytest.raises(InvalidInput) as raised:
        making.make_seal(world.session, world.keystore, es_id="X1", maker_key=world.maker_key,
                         maker_cert=world.holder_cert, holder_certs=[world.holder_cert], name="n",
                         seal_type="official", picture=world.picture,
                         valid_from=datetime.now(UTC), valid_to=datetime.now(UTC) + timedelta(1))
    assert "不匹配" in raised.value.zh


def test_only_the_seal_making_usage_signs_seals(world):
    with pytest.raises(UsageNotPermitted) as raised:  # the holder's key is for seal use, not seal making
        making.make_seal(world.session, world.keystore, es_id="X1", maker_key=world.holder_key,
                         maker_cert=world.holder_cert, holder_certs=[world.holder_cert], name="n",
                         seal_type="official", picture=world.picture,
                         valid_from=datetime.now(UTC), valid_to=datetime.now(UTC) + timedelta(1))
    assert raised.value.code == "usage_not_permitted"


def test_an_application_is_made_only_once_approved(world):
    now = datetime.now(UTC)
    record = registry.apply(world.session, holder_name=HOLDER, holder_uscc=USCC, seal_type="official",
                            name="深圳市测试局", picture=world.picture, holder_certificate=world.holder_cert,
                            holder_key_id=world.holder_key.id, valid_from=now, valid_to=now + timedelta(days=30),
                            actor="clerk")
    with pytest.raises(registry.IllegalTransition):
        making.make(world.session, world.keystore, record.es_id, maker_key=world.maker_key,
                    maker_cert=world.maker_cert, actor="officer")
    with pytest.raises(PermissionDenied):  # separation of duties: the applicant does not approve
        registry.approve(world.session, record.es_id, actor="clerk")
    assert registry.get_seal(world.session, record.es_id).status == SealStatus.APPLIED
    registry.approve(world.session, record.es_id, actor="officer")
    made = making.make(world.session, world.keystore, record.es_id, maker_key=world.maker_key,
                       maker_cert=world.maker_cert, actor="officer", activate=False)
    assert made.status == SealStatus.MADE and made.seal is not None
    assert [c.to_status for c in registry.history(world.session, record.es_id)] == ["applied", "approved", "made"]


def test_one_officer_cannot_apply_and_approve_in_one_go(world):
    with pytest.raises(PermissionDenied):
        new_seal(world, approver="officer-1")
    assert registry.list_seals(world.session) == []  # refused before anything was written


def test_dates_out_of_order_are_refused(world):
    now = datetime.now(UTC)
    with pytest.raises(InvalidInput) as raised:
        making.make_and_register(
            world.session, world.keystore, holder_name=HOLDER, holder_uscc=USCC, seal_type="official", name="n",
            picture=world.picture, holder_key=world.holder_key, holder_cert=world.holder_cert,
            maker_key=world.maker_key, maker_cert=world.maker_cert, valid_from=now, valid_to=now - timedelta(1),
            actor="officer", approver="officer-2")
    assert raised.value.code == "invalid_input" and "有效期" in raised.value.zh


# ---------------------------------------------------------------- import

def _foreign_seal(root: Issued, holder: Issued, *, es_id="FOREIGN-0001", days=365, tamper=False,
                  picture: bytes | None = None) -> bytes:
    maker = make_leaf(root, "Other seal maker")  # a seal carries no intermediates: makers chain to the root
    now = datetime.now(UTC)
    der = build_seal_v4(maker_cert=maker.cert_der, sign=maker.sign, es_id=es_id, vid="OTHER", seal_type=1,
                        name="外省某局公章", cert_list=[holder.cert_der], create_date=now - timedelta(days=1),
                        valid_start=now - timedelta(days=1), valid_end=now + timedelta(days=days),
                        picture_type="PNG", picture_data=picture or small_png().data, picture_width=40,
                        picture_height=40)
    if tamper:
        der = der.replace("外省某局公章".encode(), "外省某局印章".encode())
    return der


def test_import_a_valid_foreign_seal(world):
    root = make_root("Other Root")
    holder = make_leaf(root, {"country_name": "CN", "organization_name": "外省某局",
                              "organization_identifier": generate_uscc(random.Random(7)), "common_name": "签章"})
    der = _foreign_seal(root, holder)
    record = making.import_seal(world.session, der, trusted_roots=[root.cert_der], actor="officer")
    assert (record.es_id, record.status, record.origin, record.holder_name) == (
        "FOREIGN-0001", SealStatus.ACTIVE, "imported", "外省某局")
    assert record.seal == der and record.holder_key_id is None
    registry.authorise(world.session, record.es_id, client_ids=["app-1"])
    with pytest.raises(registry.SealNotActive):  # no key here: verification only
        registry.check_use(world.session, record.es_id, client_id="app-1")


@pytest.mark.parametrize("case", ["tampered", "untrusted", "garbage"])
def test_import_refuses_what_does_not_verify(world, case):
    root = make_root("Other Root")
    holder = make_leaf(root, {"country_name": "CN", "organization_name": "外省某局",
                              "organization_identifier": generate_uscc(random.Random(7)), "common_name": "签章"})
    der = {"tampered": lambda: _foreign_seal(root, holder, tamper=True),
           "untrusted": lambda: _foreign_seal(root, holder),
           "garbage": lambda: b"\x30\x03\x02\x01"}[case]()
    with pytest.raises(making.SealRejected) as raised:
        making.import_seal(world.session, der, trusted_roots=[] if case == "untrusted" else [root.cert_der])
    assert raised.value.report.status != Status.VALID
    failed = {c.check for s in raised.value.report.signatures for c in s.checks if c.status != CheckStatus.PASSED}
    assert {"tampered": CheckName.SEAL, "untrusted": CheckName.CHAIN, "garbage": CheckName.FORMAT}[case] in failed
    assert registry.list_seals(world.session) == []


def test_import_refuses_a_seal_whose_picture_cannot_be_shown(world):
    """The maker signed it, so it verifies (with a warning); but the registry keeps only
    seals whose picture is what its type says."""
    root = make_root("Other Root")
    holder = make_leaf(root, {"country_name": "CN", "organization_name": "外省某局",
                              "organization_identifier": generate_uscc(random.Random(7)), "common_name": "签章"})
    for picture in (b"GIF89a" + bytes(40), b"\x89PNG\r\n\x1a\n" + bytes(40)):  # another type; a broken PNG
        der = _foreign_seal(root, holder, picture=picture)
        assert verify_seal(der, trusted_roots=[root.cert_der]).status is Status.VALID
        with pytest.raises(InvalidInput) as raised:
            making.import_seal(world.session, der, trusted_roots=[root.cert_der])
        assert "PNG" in raised.value.en
    assert registry.list_seals(world.session) == []


# ---------------------------------------------------------------- the demo seal

def test_demo_seal(session, tmp_path):
    from ca.demo import set_up_demo_ca
    from hsm import officers
    from seal.demo import DEMO_CLIENT_ID, make_demo_seal
    from trust.config import Settings

    master = tmp_path / "master.key"
    kek.create_master_key_file(master)
    keystore = open_keystore(KeyStoreConfig(kek_file=master))
    credentials = []
    for i in (1, 2):
        credential, _pem = officers.new_credential()
        officers.enrol(session, f"officer-{i}", f"安全员{i}", credential.private_key.public_key().to_pem(),
                       actor="test")
        credentials.append(credential)
    set_up_demo_ca(session, keystore, Settings(home=tmp_path, database_url="sqlite://", host="127.0.0.1", port=0,
                                                max_request_bytes=1, workers=1), credentials)
    es_id = make_demo_seal(session, keystore)
    session.commit()
    record = registry.get_seal(session, es_id)
    assert record.status == SealStatus.ACTIVE and record.client_ids == (DEMO_CLIENT_ID,)
    assert record.seal_type == "official" and record.picture_type == "PNG"
    assert make_demo_seal(session, keystore) == es_id  # once only
    seal = parse_seal(record.seal)
    assert seal.seal_info.name == record.name
    # the picture carries the seal code along the lower arc: it differs from one drawn without it
    from seal.demo import DEMO_SEAL_NAME, PICTURE_DPI, demo_seal_code
    from seal.picture import seal_picture
    assert len(demo_seal_code(record.holder_uscc)) == 13
    assert record.picture != seal_picture("official", DEMO_SEAL_NAME, dpi=PICTURE_DPI).data
