"""Issuing licences: a sealed OFD that ofdrw and our verifier accept, whose face reads back
with easyofd, whose metadata is the record's; every bad request refused with nothing half
issued; idempotency keys."""

import base64
import json
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from licence import issuance, layout, metadata, registry
from licence.face import FaceInvalid
from licence.identifier import parse
from licence.issuance import IdempotencyConflict
from licence.models import licence_serial, licences
from licence.registry import LicenceStatus
from ofd.package import Package
from ofd.reader import read_ofd
from ofd.verify import verify_ofd
from trust.audit import audit_log
from trust.errors import InvalidInput, NotFound, PermissionDenied
from trust.hashes import sm3
from trust.report import Status

from tests.fixtures.seal import USCC
from tests.licence_support import (
    BUSINESS,
    CLIENT,
    ENTERPRISE_USCC,
    PERSON_ID,
    VERIFY_URL,
    business_request,
    food_request,
    issue,
    make_authority,
    physician_request,
)
from tests.oracles import ofdrw_verify


@pytest.fixture
def authority(session, tmp_path):
    return make_authority(session, tmp_path)


def _easyofd_text(data: bytes) -> str:
    from easyofd.parser_ofd.ofd_parser import OFDParser  # independent parser; imports are slow and noisy
    (doc,) = OFDParser(base64.b64encode(data).decode())()
    return "".join(t["text"] for t in doc["page_info"][0]["text_list"])


def _audit(session, action):
    return [(r.target, json.loads(r.detail)) for r in
            session.execute(select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.seq))]


def test_a_business_licence_is_sealed_read_back_and_verified_by_ofdrw(authority, tmp_path):
    session = authority.world.session
    record, new = issue(authority, business_request())
    session.commit()
    assert new and record.status == LicenceStatus.VALID and record.es_id == authority.seal.es_id
    licence_id = parse(record.licence_id)
    assert (licence_id.type_code, licence_id.issuer_code, licence_id.version) == (BUSINESS, USCC, 1)
    assert record.record["licence_no"] == ENTERPRISE_USCC and record.record["valid_to"] is None
    data = registry.ofd_file(session, record.licence_id)
    assert sm3(data).hex() == record.ofd_sm3

    text = _easyofd_text(data)
    for _, _, printed in record.record["printed"]:
        assert printed in text, printed
    assert "壹仟万元整" in text and "2019年03月01日 至 长期" in text

    document = read_ofd(data)
    assert document.info["Title"] == "营业执照"
    assert document.info["CustomDatas"]["证照标识"] == record.licence_id
    assert document.info["CustomDatas"]["有效期截止日期"] == "长期"
    (tag,) = document.custom_tags
    assert tag.namespace == metadata.NAMESPACE and tag.part == "Doc_0/Tags/LicenceMeta.xml"  # spec §4
    assert metadata.from_xml(Package.from_bytes(data).read(tag.part)) == record.metadata()

    report = verify_ofd(data, trusted_roots=[authority.world.root.cert_der])
    assert report.status == Status.VALID, report.to_dict()
    (path := tmp_path / "licence.ofd").write_bytes(data)
    (verdict,) = ofdrw_verify(path)
    assert verdict["ok"] and verdict["type"] == "Seal", verdict

    (target, detail), = _audit(session, "licence.issue")
    assert target == record.licence_id and detail["ofd_sm3"] == record.ofd_sm3 and detail["operation"] == "01"
    purposes = [d["purpose"] for _, d in _audit(session, "seal.sign")]
    assert purposes == [f"证照签发 licence {record.licence_id}"]
    assert [h.operation.value for h in registry.history(session, record.licence_id)] == ["01"]


def test_a_tampered_copy_fails_ofdrw_and_our_verifier(authority, tmp_path):
    record, _ = issue(authority, business_request())
    data = registry.ofd_file(authority.world.session, record.licence_id)
    package = Package.from_bytes(data)
    parts = dict(package.parts)
    page = next(name for name in parts if name.endswith("Content.xml"))
    parts[page] = parts[page].replace("张三".encode(), "李四".encode())
    from trust.archive import write_zip
    tampered = write_zip(parts)
    assert verify_ofd(tampered, trusted_roots=[authority.world.root.cert_der]).status == Status.INVALID
    (path := tmp_path / "tampered.ofd").write_bytes(tampered)
    (verdict,) = ofdrw_verify(path)
    assert not verdict["ok"]


def test_food_and_physician_licences(authority, tmp_path):
    food, _ = issue(authority, food_request())
    assert food.record["licence_no"] == "JY23501020000123"
    start = date.fromisoformat(food.record["valid_from"])  # five years, to the day before
    assert food.record["valid_to"] == (issuance._add_years(start, 5) - timedelta(days=1)).isoformat()
    doctor, _ = issue(authority, physician_request())
    assert doctor.record["holder"] == {"name": "王芳", "code": PERSON_ID, "code_type": "111"}
    for record in (food, doctor):
        data = registry.ofd_file(authority.world.session, record.licence_id)
        (path := tmp_path / "x.ofd").write_bytes(data)
        assert all(v["ok"] for v in ofdrw_verify(path))
        assert verify_ofd(data, trusted_roots=[authority.world.root.cert_der]).status == Status.VALID


def test_a_long_business_scope_wraps_and_shrinks_and_reads_back(authority):
    scope = "；".join(f"第{i}项经营活动：技术开发、技术咨询、技术交流、技术转让、技术推广" for i in range(1, 16)) + "。"
    record, _ = issue(authority, business_request(face={**business_request()["face"], "business_scope": scope}))
    data = registry.ofd_file(authority.world.session, record.licence_id)
    runs = [r for r in read_ofd(data).pages[0].texts if "技术" in r.text]
    assert len(runs) > 5 and len({r.size for r in runs}) == 1 and runs[0].size < 3.6
    assert scope in "".join(r.text for r in runs)


def test_text_that_cannot_fit_is_refused_naming_the_field_and_nothing_is_issued(authority):
    session = authority.world.session
    with pytest.raises(layout.LayoutError) as caught:
        issue(authority, business_request(face={**business_request()["face"], "business_scope": "经营" * 1000}))
    assert "business_scope" in caught.value.en and "经营范围" in caught.value.zh
    with pytest.raises(layout.LayoutError) as caught:
        issue(authority, business_request(holder={"name": "很长的公司名称" * 14, "code": ENTERPRISE_USCC,
                                                  "code_type": "001"}))
    assert "'name'" in caught.value.en
    assert session.execute(select(func.count()).select_from(licences)).scalar() == 0


@pytest.mark.parametrize("change, words", [
    ({"type_code": "11100000MB0143028R999"}, "no licence type"),
    ({"holder": {"name": "某公司", "code": "91350100M000100Y44", "code_type": "001"}}, "check"),
    ({"holder": {"name": "某公司", "code": PERSON_ID, "code_type": "111"}}, "holder code type"),
    ({"holder": {"name": "", "code": ENTERPRISE_USCC, "code_type": "001"}}, "holder's name"),
    ({"validity": {"to": "2030-01-01"}}, "without end"),
    ({"colour": "red"}, "not a member"),
    ({"face": {**business_request()["face"], "entity_type": "黑帮"}}, "entity_type"),
])
def test_bad_requests_are_refused_clearly(authority, change, words):
    with pytest.raises((InvalidInput, NotFound)) as caught:
        issue(authority, business_request(**change))
    assert words in caught.value.en and caught.value.zh


def test_validity_ending_before_it_starts_is_refused(authority):
    body = food_request()
    body["validity"] = {"from": "2026-01-10", "to": "2026-01-09"}
    with pytest.raises(InvalidInput, match="before it starts"):
        issue(authority, body)


def test_face_errors_name_every_field(authority):
    with pytest.raises(FaceInvalid) as caught:
        issue(authority, business_request(face={"legal_representative": "张三"}))
    assert {e.key for e in caught.value.errors} >= {"entity_type", "established_on", "business_scope"}


def test_an_unauthorised_client_is_refused_and_audited(authority):
    session = authority.world.session
    with pytest.raises(PermissionDenied):
        issue(authority, business_request(), client_id="other-app")
    with pytest.raises(PermissionDenied):
        issue(authority, business_request(issuer_code=ENTERPRISE_USCC))
    refusals = _audit(session, "licence.refuse")
    assert [t for t, _ in refusals] == [f"{BUSINESS}/{USCC}", f"{BUSINESS}/{ENTERPRISE_USCC}"]


def test_a_fault_between_the_steps_leaves_nothing_behind(authority, monkeypatch):
    session = authority.world.session
    before = session.execute(select(func.max(audit_log.c.seq))).scalar()

    def broken(*args, **kwargs):
        raise RuntimeError("injected fault after the file was stored")
    monkeypatch.setattr(registry, "add_history", broken)
    with pytest.raises(RuntimeError):
        issue(authority, business_request())
    session.rollback()
    assert session.execute(select(func.count()).select_from(licences)).scalar() == 0
    assert session.execute(select(func.count()).select_from(licence_serial)).scalar() == 0
    assert session.execute(select(func.max(audit_log.c.seq))).scalar() == before
    monkeypatch.undo()
    record, _ = issue(authority, business_request())
    assert parse(record.licence_id).serial.endswith("0000001")


def test_the_same_idempotency_key_and_request_give_the_same_licence(authority):
    session = authority.world.session
    first, new = issue(authority, business_request(), idempotency_key="req-1")
    session.commit()
    again, new_again = issue(authority, business_request(), idempotency_key="req-1")
    assert new and not new_again and again.licence_id == first.licence_id
    with pytest.raises(IdempotencyConflict):
        issue(authority, business_request(face={**business_request()["face"], "legal_representative": "李四"}),
              idempotency_key="req-1")
    other, _ = issue(authority, business_request(), idempotency_key="req-2")
    assert other.licence_id != first.licence_id
    assert session.execute(select(func.count()).select_from(licences)).scalar() == 2


def test_the_qr_opens_the_verification_page(authority, tmp_path):
    import shutil
    import subprocess

    from ofd.render import render_page
    record, _ = issue(authority, business_request())
    png = render_page(registry.ofd_file(authority.world.session, record.licence_id), dpi=200)
    (path := tmp_path / "face.png").write_bytes(png)
    found = subprocess.run([shutil.which("zbarimg") or "zbarimg", "--raw", "-q", str(path)], capture_output=True,
                           timeout=60)
    assert found.stdout.decode().strip() == issuance.verify_url_for(VERIFY_URL, record.licence_id)
    assert CLIENT == record.client_id
