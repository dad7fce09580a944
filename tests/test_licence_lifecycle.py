"""The licence lifecycle with the national status codes: suspend and resume, revoke, annul,
cancel, expire from cron, and versions: a change (变更) or renewal (延续) supersedes."""

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from licence import issuance, registry
from licence.identifier import parse
from licence.registry import IllegalTransition, LicenceStatus
from ofd.text import document_text
from trust.audit import audit_log
from trust.errors import InvalidInput, PermissionDenied

from tests.licence_support import (
    CLIENT,
    VERIFY_URL,
    business_request,
    food_request,
    issue,
    make_authority,
    physician_request,
)


@pytest.fixture
def authority(session, tmp_path):
    return make_authority(session, tmp_path)


def _move(authority, licence_id, act, reason="依法处理 by law"):
    return registry.transition(authority.world.session, licence_id, act, actor="officer-1", reason=reason)


def _change(authority, licence_id, body, **options):
    options.setdefault("client_id", CLIENT)
    options.setdefault("reason", "住所变更 new domicile")
    return issuance.change(authority.world.session, authority.world.keystore, licence_id, body,
                           verify_url=VERIFY_URL, **options)


def test_suspend_resume_revoke_with_history_and_audit(authority):
    session = authority.world.session
    record, _ = issue(authority, business_request())
    assert _move(authority, record.licence_id, "suspend").status == LicenceStatus.SUSPENDED
    assert _move(authority, record.licence_id, "resume").status == LicenceStatus.VALID
    revoked = _move(authority, record.licence_id, "revoke", "严重违法 serious violation")
    assert revoked.status == LicenceStatus.REVOKED and revoked.status.zh == "吊销" and revoked.status.value == "07"
    steps = [(h.operation.value, h.from_status and h.from_status.value, h.to_status.value, h.actor)
             for h in registry.history(session, record.licence_id)]
    assert steps == [("01", None, "01", f"client:{CLIENT}"), ("03", "01", "02", "officer-1"),
                     ("06", "02", "01", "officer-1"), ("07", "01", "07", "officer-1")]
    details = [json.loads(r.detail) for r in session.execute(
        select(audit_log).where(audit_log.c.action == "licence.status").order_by(audit_log.c.seq))]
    assert [d["act"] for d in details] == ["suspend", "resume", "revoke"]
    assert details[-1]["reason"] == "严重违法 serious violation"
    with pytest.raises(IllegalTransition) as caught:
        _move(authority, record.licence_id, "resume")
    assert "revoked" in caught.value.en and "吊销" in caught.value.zh


@pytest.mark.parametrize("act, code", [("annul", "03"), ("cancel", "04"), ("expire", "05")])
def test_ending_acts_have_their_national_codes(authority, act, code):
    record, _ = issue(authority, business_request())
    assert _move(authority, record.licence_id, act).status.value == code
    for later in ("suspend", "revoke", "resume"):
        with pytest.raises(IllegalTransition):
            _move(authority, record.licence_id, later)


def test_every_act_needs_a_reason_and_a_known_name(authority):
    record, _ = issue(authority, business_request())
    with pytest.raises(InvalidInput, match="reason"):
        _move(authority, record.licence_id, "revoke", " ")
    with pytest.raises(InvalidInput, match="unknown licence operation"):
        _move(authority, record.licence_id, "burn")


def test_a_change_makes_version_002_which_supersedes_001(authority):
    session = authority.world.session
    first, _ = issue(authority, business_request())
    second = _change(authority, first.licence_id, {"face": {"domicile": "福州市鼓楼区新址路9号"},
                                                   "holder": {"name": "福州新名科技有限公司"}})
    assert parse(second.licence_id) == parse(first.licence_id).with_version(2)
    assert second.supersedes == first.licence_id and second.record["holder"]["name"] == "福州新名科技有限公司"
    assert second.record["face"]["business_scope"] == first.record["face"]["business_scope"]
    old = registry.get(session, first.licence_id)
    assert old.superseded_by == second.licence_id and old.status == LicenceStatus.EXPIRED
    assert registry.versions(session, second.licence_id) == [first.licence_id, second.licence_id]
    assert [h.operation.value for h in registry.history(session, first.licence_id)] == ["01", "09"]
    text = document_text(registry.ofd_file(session, second.licence_id))[0]
    assert "福州市鼓楼区新址路9号" in text and "福州新名科技有限公司" in text
    assert registry.ofd_file(session, first.licence_id) != registry.ofd_file(session, second.licence_id)
    with pytest.raises(IllegalTransition) as caught:
        _change(authority, first.licence_id, {"face": {"domicile": "又一个地址"}})
    assert second.licence_id in caught.value.en
    with pytest.raises(IllegalTransition):
        _move(authority, first.licence_id, "revoke")


def test_a_change_cannot_swap_the_holder_or_break_a_field(authority):
    first, _ = issue(authority, business_request())
    with pytest.raises(InvalidInput, match="name only"):
        _change(authority, first.licence_id, {"holder": {"code": "91350100M000100Y43"}})
    with pytest.raises(InvalidInput):
        _change(authority, first.licence_id, {"face": {"entity_type": "黑帮"}})
    with pytest.raises(PermissionDenied):
        _change(authority, first.licence_id, {"face": {"domicile": "某地"}}, client_id="other-app")


def test_renewal_starts_after_the_old_end_for_five_years(authority):
    food, _ = issue(authority, food_request())
    renewed = _change(authority, food.licence_id, {}, renew=True, reason="到期延续 renewal")
    old_end = date.fromisoformat(food.record["valid_to"])
    assert renewed.record["valid_from"] == (old_end + timedelta(days=1)).isoformat()
    assert date.fromisoformat(renewed.record["valid_to"]) > old_end + timedelta(days=5 * 365 - 3)
    assert [h.operation.value for h in registry.history(authority.world.session, food.licence_id)] == ["01", "02"]
    doctor, _ = issue(authority, physician_request())
    with pytest.raises(InvalidInput, match="never renewed"):
        _change(authority, doctor.licence_id, {}, renew=True)


def test_expire_from_cron_ends_only_what_is_due(authority):
    session = authority.world.session
    food, _ = issue(authority, food_request())
    business, _ = issue(authority, business_request())
    end = date.fromisoformat(food.record["valid_to"])
    assert registry.expire_due(session, today=end) == []
    assert registry.expire_due(session, today=end + timedelta(days=1)) == [food.licence_id]
    assert registry.get(session, food.licence_id).status == LicenceStatus.EXPIRED
    assert registry.get(session, business.licence_id).status == LicenceStatus.VALID  # 长期
    late = datetime(end.year, end.month, end.day, 16, 30, tzinfo=UTC)  # 00:30 the next day in Beijing
    assert registry.expire_due(session, clock=lambda: late) == []  # already done
