"""Verifying licences: the seal and the registry together decide, with a licence section
and the licence_status check; another province's licence verifies under its trusted root."""

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from licence import issuance, registry
from licence.verify import mask_id_number, mask_name, registry_lookup, verify_licence
from ofd import layout
from ofd.writer import write_ofd
from trust.errors import StorageError, TrustError
from trust.report import CheckName as C, CheckStatus as S, Status

from tests.licence_support import (
    CLIENT,
    PERSON_ID,
    VERIFY_URL,
    business_request,
    issue,
    make_authority,
    physician_request,
)


@pytest.fixture
def authority(session, tmp_path):
    return make_authority(session, tmp_path)


def _verify(authority, data, lookup=None, roots=None):
    session = authority.world.session
    return verify_licence(data, lookup=lookup or registry_lookup(session),
                          trusted_roots=[authority.world.root.cert_der] if roots is None else roots)


def _status(report):
    (signature,) = report.signatures
    return signature.check_status(C.LICENCE_STATUS), signature.checks[-1].reason


def test_a_valid_licence_verifies_with_its_section(authority):
    record, _ = issue(authority, business_request())
    report = _verify(authority, registry.ofd_file(authority.world.session, record.licence_id))
    assert report.status == Status.VALID, report.to_dict()
    assert _status(report)[0] == S.PASSED
    section = report.to_dict()["licence"]
    assert section["licence_id"] == record.licence_id and section["status"] == "01"
    assert section["status_at_signing"] == "01" and section["registered"] and section["version"] == 1
    assert section["holder"] == {"name": "福州测试科技有限公司", "code": "91350100M000100Y43", "code_type": "001",
                                 "masked": False}
    assert section["valid_to"] == "长期" and section["type_name"] == "营业执照"
    assert list(report.to_dict())[:3] == ["status", "format", "licence"]


def test_a_revoked_licence_with_a_perfect_seal_is_invalid(authority):
    record, _ = issue(authority, business_request())
    data = registry.ofd_file(authority.world.session, record.licence_id)
    registry.transition(authority.world.session, record.licence_id, "revoke", actor="officer-1", reason="违法")
    report = _verify(authority, data)
    assert report.status == Status.INVALID
    status, reason = _status(report)
    assert status == S.FAILED and "吊销" in reason.zh and "revoked" in reason.en
    (signature,) = report.signatures
    assert signature.check_status(C.SIGNATURE) == S.PASSED  # the seal itself is fine
    assert report.licence["status"] == "07" and report.licence["status_at_signing"] == "01"


def test_version_001_reports_it_was_superseded_by_002(authority):
    session = authority.world.session
    first, _ = issue(authority, business_request())
    second = issuance.change(session, authority.world.keystore, first.licence_id, {"face": {"domicile": "新址"}},
                             client_id=CLIENT, verify_url=VERIFY_URL, reason="住所变更")
    old = _verify(authority, registry.ofd_file(session, first.licence_id))
    assert old.status == Status.INVALID and old.licence["superseded_by"] == second.licence_id
    assert second.licence_id in _status(old)[1].en
    new = _verify(authority, registry.ofd_file(session, second.licence_id))
    assert new.status == Status.VALID and new.licence["supersedes"] == first.licence_id and new.licence["version"] == 2


def test_a_natural_persons_holder_is_masked(authority):
    record, _ = issue(authority, physician_request())
    report = _verify(authority, registry.ofd_file(authority.world.session, record.licence_id))
    assert report.licence["holder"] == {"name": "王*", "code": "1101**********002X", "code_type": "111",
                                        "masked": True}
    assert PERSON_ID not in str(report.to_dict()) and "王芳" not in str(report.to_dict())
    assert mask_name("张三丰") == "张**" and mask_id_number("320102199001011234") == "3201**********1234"


def test_a_registry_that_cannot_be_asked_leaves_the_verdict_indeterminate(authority):
    record, _ = issue(authority, business_request())

    def down(licence_id):
        raise StorageError("the database cannot be reached", "无法连接数据库")
    report = _verify(authority, registry.ofd_file(authority.world.session, record.licence_id), lookup=down)
    assert report.status == Status.INDETERMINATE and _status(report)[0] == S.INDETERMINATE


def test_another_file_under_a_registered_identifier_fails(authority):
    session = authority.world.session
    record, _ = issue(authority, business_request())
    other = dataclasses.replace(record, ofd_sm3="00" * 32)
    report = _verify(authority, registry.ofd_file(session, record.licence_id),
                     lookup=lambda licence_id: (other, registry.history(session, licence_id)))
    assert report.status == Status.INVALID and "not the one registered" in _status(report)[1].en


def test_another_provinces_licence_verifies_under_its_trusted_root_only(authority):
    """The issuing authority here stands for another province: our registry does not know
    the licence, so its seal's chain to a root trusted for licences decides."""
    record, _ = issue(authority, business_request())
    data = registry.ofd_file(authority.world.session, record.licence_id)
    trusted = _verify(authority, data, lookup=lambda licence_id: None)
    assert trusted.status == Status.VALID and _status(trusted)[0] == S.NOT_APPLICABLE
    assert not trusted.licence["registered"] and any("ask the issuer" in w.en for w in trusted.warnings)
    untrusted = _verify(authority, data, lookup=lambda licence_id: None, roots=[])
    assert untrusted.status == Status.INDETERMINATE
    (signature,) = untrusted.signatures
    assert signature.check_status(C.CHAIN) == S.INDETERMINATE


def test_an_ofd_without_licence_metadata_is_verified_as_a_document(authority):
    data = write_ofd(layout.Document(pages=(layout.Page(items=(layout.Text(20, 20, "不是证照"),)),)))
    report = _verify(authority, data)
    assert report.licence is None and any("no licence metadata" in w.en for w in report.warnings)


@pytest.fixture(scope="module")
def sealed_licence(tmp_path_factory):
    """One sealed licence and its root, for the fuzzing below (made once: hypothesis reruns)."""
    from trust import db
    tmp_path = tmp_path_factory.mktemp("fuzz")
    engine = db.make_engine(f"sqlite:///{tmp_path / 'trust.db'}")
    db.upgrade(engine)
    with db.session_factory(engine)() as session:
        authority = make_authority(session, tmp_path)
        record, _ = issue(authority, business_request())
        session.commit()
        yield registry.ofd_file(session, record.licence_id), authority.world.root.cert_der
    engine.dispose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_a_mangled_licence_never_verifies_and_fails_only_with_our_errors(sealed_licence, data):
    original, root = sealed_licence
    blob = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = blob[:data.draw(st.integers(0, len(blob)))]
    blob = bytes(blob)
    try:
        report = verify_licence(blob, lookup=lambda licence_id: None, trusted_roots=[root])
    except TrustError:
        return
    if blob != original:
        assert report.status != Status.VALID or _same_content(original, blob)


def _same_content(original: bytes, changed: bytes) -> bool:
    """A change only to the zip's own framing (a timestamp, a comment) leaves every part the same."""
    from ofd.package import Package
    try:
        return dict(Package.from_bytes(original).parts) == dict(Package.from_bytes(changed).parts)
    except TrustError:
        return False
