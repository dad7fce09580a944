"""Dual control: M-of-N officer approvals, on SQLite and PostgreSQL."""

import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import insert, select, update

from hsm import dual_control, kek, officers
from hsm.dual_control import Action, RequestClosed
from hsm.keystore import KeyState, KeyStoreConfig, is_root_ca_key, open_keystore
from hsm.officers import Credential, PermissionDenied, Proof
from trust import audit
from trust.errors import InvalidInput, KeyUnavailable
from trust.sm2 import SM2PrivateKey

from tests.oracles import STANDARD_ID, openssl

T0 = datetime(2026, 11, 22, 3, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


def _note(session, keystore, req, actor):
    audit.append(session, actor, "test.noted", req.target)
    if req.parameters.get("fail"):
        raise KeyUnavailable("the device went away", "设备不可用")
    return {"noted": req.target}


def _check_note(session, keystore, target, parameters):
    if target == "bad":
        raise InvalidInput("bad target", "对象无效")


dual_control.register(Action("test.note", "记录", "note", _check_note, _note))


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def creds(session, clock):
    """Three enrolled officers, officer-1..3."""
    found = []
    for i in (1, 2, 3):
        credential, _pem = officers.new_credential()
        officers.enrol(session, f"officer-{i}", f"安全员{i}", credential.private_key.public_key().to_pem(),
                       actor="test", clock=clock)
        found.append(credential)
    session.commit()
    return found


def noted(session):
    return [r.target for r in session.execute(
        select(audit.audit_log).where(audit.audit_log.c.action == "test.noted")).all()]


def actions(session):
    return [(r.actor, r.action) for r in session.execute(
        select(audit.audit_log).order_by(audit.audit_log.c.seq)).all()]


def open_note(session, creds, clock, target="t1", parameters=None, who=0):
    req = dual_control.request(session, None, "test.note", target, parameters or {},
                               credential=creds[who], clock=clock)
    session.commit()
    return req


def test_one_officer_alone_cannot_run_two_can(session, creds, clock):
    req = open_note(session, creds, clock)
    assert req.status == "pending" and req.approvals == ("officer-1",) and req.still_needed == 1
    assert noted(session) == []
    done = dual_control.approve(session, None, req.id, credential=creds[1], clock=clock)
    session.commit()
    assert done.status == "executed" and done.approvals == ("officer-1", "officer-2")
    assert done.result == {"noted": "t1"} and done.still_needed == 0
    assert noted(session) == ["t1"]
    assert actions(session)[-4:] == [
        ("officer-1", "approval.request"), ("officer-2", "approval.approve"),
        (f"approval:{req.id}", "test.noted"), (f"approval:{req.id}", "approval.execute")]
    assert audit.verify_chain(session).ok


def test_the_requester_cannot_approve_their_own_request(session, creds, clock):
    req = open_note(session, creds, clock)
    with pytest.raises(PermissionDenied, match="own request"):
        dual_control.approve(session, None, req.id, credential=creds[0], clock=clock)
    session.commit()  # keeps the refusal
    assert dual_control.get(session, req.id, clock=clock).status == "pending"
    assert noted(session) == []
    assert actions(session)[-1] == ("officer-1", "officer.denied")


def test_the_same_officer_counts_once(session, creds, clock):
    change_policy(session, creds, clock, threshold=3)
    req = open_note(session, creds, clock)
    assert req.threshold == 3
    dual_control.approve(session, None, req.id, credential=creds[1], clock=clock)
    session.commit()
    with pytest.raises(PermissionDenied, match="counts once"):
        dual_control.approve(session, None, req.id, credential=creds[1], clock=clock)
    session.commit()
    state = dual_control.get(session, req.id, clock=clock)
    assert state.status == "pending" and state.approvals == ("officer-1", "officer-2")
    assert state.still_needed == 1 and noted(session) == []
    done = dual_control.approve(session, None, req.id, credential=creds[2], clock=clock)
    assert done.status == "executed" and noted(session) == ["t1"]


def change_policy(session, creds, clock, threshold, ttl_seconds=24 * 3600):
    req = dual_control.request(session, None, "policy.change", "policy",
                               {"threshold": threshold, "ttl_seconds": ttl_seconds},
                               credential=creds[0], clock=clock)
    done = dual_control.approve(session, None, req.id, credential=creds[1], clock=clock)
    session.commit()
    assert done.status == "executed", done.error
    assert dual_control.policy(session) == dual_control.Policy(threshold, timedelta(seconds=ttl_seconds))


def test_the_policy_changes_only_by_dual_control_and_within_bounds(session, creds, clock):
    assert dual_control.policy(session) == dual_control.Policy(2, timedelta(hours=24))
    req = dual_control.request(session, None, "policy.change", "policy", {"threshold": 3, "ttl_seconds": 3600},
                               credential=creds[0], clock=clock)
    session.commit()
    assert dual_control.policy(session).threshold == 2  # one officer alone changed nothing
    dual_control.approve(session, None, req.id, credential=creds[2], clock=clock)
    session.commit()
    assert dual_control.policy(session) == dual_control.Policy(3, timedelta(hours=1))
    for bad in ({"threshold": 4, "ttl_seconds": 3600}, {"threshold": 1, "ttl_seconds": 3600},
                {"threshold": 2, "ttl_seconds": 10}, {"threshold": "2", "ttl_seconds": 3600}, {}):
        with pytest.raises(InvalidInput):
            dual_control.request(session, None, "policy.change", "policy", bad, credential=creds[0], clock=clock)
        session.rollback()


def test_an_expired_request_cannot_run(session, creds, clock):
    req = open_note(session, creds, clock)
    assert req.expires_at == T0 + timedelta(hours=24)
    clock.now = T0 + timedelta(hours=24)
    assert dual_control.get(session, req.id, clock=clock).status == "expired"
    with pytest.raises(RequestClosed, match="expired"):
        dual_control.approve(session, None, req.id, credential=creds[1], clock=clock)
    session.commit()
    assert noted(session) == []
    assert actions(session)[-1] == ("trustctl", "approval.expire")
    with pytest.raises(RequestClosed, match="closed"):
        dual_control.approve(session, None, req.id, credential=creds[2], clock=clock)
    assert dual_control.list_requests(session, clock=clock) == []


def test_a_rejection_ends_the_request(session, creds, clock):
    req = open_note(session, creds, clock)
    done = dual_control.reject(session, req.id, credential=creds[2], reason="不必要 / not needed", clock=clock)
    session.commit()
    assert done.status == "rejected" and done.rejected_by == "officer-3" and done.reason.startswith("不必要")
    with pytest.raises(RequestClosed):
        dual_control.approve(session, None, req.id, credential=creds[1], clock=clock)
    assert noted(session) == []


def test_the_requester_may_withdraw(session, creds, clock):
    req = open_note(session, creds, clock)
    assert dual_control.reject(session, req.id, credential=creds[0], clock=clock).status == "rejected"


class Forger:
    """Someone who knows officer-2's public fingerprint but not the private key."""

    def __init__(self, victim: Credential):
        self.victim, self.key = victim, SM2PrivateKey.generate()

    def prove(self, statement: bytes) -> Proof:
        return Proof(self.victim.fingerprint, self.key.sign(statement))


def test_forged_and_unknown_credentials_are_refused(session, creds, clock):
    stranger, _pem = officers.new_credential()
    with pytest.raises(PermissionDenied, match="no active security officer"):
        open_note(session, [stranger], clock)
    session.commit()
    req = open_note(session, creds, clock)
    with pytest.raises(PermissionDenied, match="does not verify"):
        dual_control.approve(session, None, req.id, credential=Forger(creds[1]), clock=clock)
    session.commit()
    with pytest.raises(PermissionDenied, match="no active"):
        dual_control.approve(session, None, req.id, credential=stranger, clock=clock)
    session.commit()
    assert dual_control.get(session, req.id, clock=clock).status == "pending" and noted(session) == []
    denied = [a for a in actions(session) if a[1] == "officer.denied"]
    assert denied[1] == ("officer-2", "officer.denied") and len(denied) == 3
    assert audit.verify_chain(session).ok


def test_an_approval_written_into_the_database_by_hand_does_not_count(session, creds, clock):
    change_policy(session, creds, clock, threshold=3)
    other = open_note(session, creds, clock, target="t0")
    dual_control.approve(session, None, other.id, credential=creds[2], clock=clock)  # officer-3, genuinely
    session.commit()
    replayed = session.execute(select(dual_control.approval_decisions.c.signature).where(
        dual_control.approval_decisions.c.request_id == other.id)).scalar_one()
    for signature in ("not hex at all", replayed):  # garbage, and officer-3's signature of another request
        req = open_note(session, creds, clock)
        session.execute(insert(dual_control.approval_decisions).values(
            request_id=req.id, officer_id="officer-3", decision="approve", reason="", signature=signature, at=T0))
        session.commit()
        done = dual_control.approve(session, None, req.id, credential=creds[1], clock=clock)
        session.commit()
        assert done.status == "pending" and done.still_needed == 1
        assert noted(session) == []


def test_a_revoked_officer_no_longer_counts(session, creds, clock):
    req = open_note(session, creds, clock)
    officers.revoke(session, "officer-1", actor="test", clock=clock)
    done = dual_control.approve(session, None, req.id, credential=creds[1], clock=clock)
    assert done.status == "pending" and noted(session) == []  # the requester's consent lapsed
    with pytest.raises(PermissionDenied):
        open_note(session, creds, clock, who=0)


def test_a_request_needs_enough_active_officers(session, creds, clock):
    officers.revoke(session, "officer-2", actor="test", clock=clock)
    officers.revoke(session, "officer-3", actor="test", clock=clock)
    with pytest.raises(InvalidInput, match="only 1 are active"):
        open_note(session, creds, clock)


def test_a_bad_request_is_refused_before_it_opens(session, creds, clock):
    with pytest.raises(InvalidInput, match="bad target"):
        open_note(session, creds, clock, target="bad")
    with pytest.raises(InvalidInput, match="no dual-control action"):
        dual_control.request(session, None, "key.nuke", "x", {}, credential=creds[0], clock=clock)


def test_a_failing_act_is_undone_and_recorded(session, creds, clock):
    req = open_note(session, creds, clock, parameters={"fail": True})
    done = dual_control.approve(session, None, req.id, credential=creds[1], clock=clock)
    session.commit()
    assert done.status == "failed" and "device went away" in done.error
    assert noted(session) == []  # the act's own writes were rolled back
    assert actions(session)[-2:] == [("officer-2", "approval.approve"), (f"approval:{req.id}", "approval.fail")]
    assert audit.verify_chain(session).ok


def test_a_tampered_request_no_longer_has_its_signatures(session, creds, clock):
    req = open_note(session, creds, clock, target="t1")
    session.execute(update(dual_control.approval_requests).where(dual_control.approval_requests.c.id == req.id)
                    .values(target="t2"))
    session.commit()
    done = dual_control.approve(session, None, req.id, credential=creds[1], clock=clock)
    assert done.status == "pending" and noted(session) == []  # the requester's signature is over t1


def test_credential_files(tmp_path):
    credential, pem_text = officers.new_credential()
    path = tmp_path / "officer.pem"
    officers.write_credential(path, pem_text)
    assert path.stat().st_mode & 0o777 == 0o600
    assert officers.load_credential(path).fingerprint == credential.fingerprint
    path.chmod(0o640)
    with pytest.raises(PermissionDenied, match="chmod 600"):
        officers.load_credential(path)
    path.chmod(0o600)
    path.write_text("not a key")
    with pytest.raises(InvalidInput, match="no SM2 private key"):
        officers.load_credential(path)
    with pytest.raises(PermissionDenied, match="cannot read"):
        officers.load_credential(tmp_path / "missing.pem")
    os.mkfifo(tmp_path / "fifo", 0o600)
    with pytest.raises(PermissionDenied, match="not a regular file"):
        officers.load_credential(tmp_path / "fifo")


# ---------------------------------------------------------------- the real KeyStore actions

@pytest.fixture
def keystore(tmp_path):
    master = tmp_path / "master.key"
    kek.create_master_key_file(master)
    return open_keystore(KeyStoreConfig(kek_file=master))


def test_destroying_a_key_needs_two_officers(session, creds, clock, keystore):
    ref = keystore.generate(session, "SM2-with-SM3", "seal/1", ["seal"], actor="officer-1")
    req = dual_control.request(session, keystore, "key.destroy", ref.id, {}, credential=creds[0], clock=clock)
    session.commit()
    assert keystore.get(session, ref.id).state == KeyState.ACTIVE
    assert keystore.sign(session, ref, b"still usable", usage="seal")
    done = dual_control.approve(session, keystore, req.id, credential=creds[2], clock=clock)
    session.commit()
    assert done.status == "executed" and done.result == {"state": "destroyed"}
    assert keystore.get(session, ref.id).state == KeyState.DESTROYED
    with pytest.raises(InvalidInput, match="already destroyed"):
        dual_control.request(session, keystore, "key.destroy", ref.id, {}, credential=creds[0], clock=clock)
    session.rollback()
    assert audit.verify_chain(session).ok


def test_rotating_the_kek_needs_two_officers(session, creds, clock, keystore, tmp_path):
    ref = keystore.generate(session, "ES256", "token/1", ["token"], actor="officer-1")
    session.commit()
    before = (tmp_path / "master.key").read_text()
    req = dual_control.request(session, keystore, "kek.rotate", "kek", {}, credential=creds[1], clock=clock)
    session.commit()
    assert (tmp_path / "master.key").read_text() == before  # nothing happened yet
    done = dual_control.approve(session, keystore, req.id, credential=creds[0], clock=clock)
    session.commit()
    assert done.status == "executed" and done.result["keys"] == 1 and done.result["to"] != done.result["from"]
    fresh = open_keystore(KeyStoreConfig(kek_file=tmp_path / "master.key"))
    signature = fresh.sign(session, ref, b"after rotation", usage="token")
    fresh.public_key(session, ref).verify(signature, b"after rotation", ec.ECDSA(hashes.SHA256()))


def test_a_keystore_fault_fails_the_request_and_keeps_the_key(session, creds, clock, tmp_path):
    master = tmp_path / "master.key"
    kek.create_master_key_file(master)
    keystore = open_keystore(KeyStoreConfig(kek_file=master))
    keystore.generate(session, "SM2-with-SM3", "seal/1", ["seal"], actor="officer-1")
    req = dual_control.request(session, keystore, "kek.rotate", "kek", {}, credential=creds[0], clock=clock)
    session.commit()
    master.chmod(0o644)  # the KEK file is refused now
    done = dual_control.approve(session, open_keystore(KeyStoreConfig(kek_file=master)), req.id,
                                credential=creds[1], clock=clock)
    session.commit()
    assert done.status == "failed" and "0600" in done.error
    assert actions(session)[-1] == (f"approval:{req.id}", "approval.fail")
    assert audit.verify_chain(session).ok


def test_a_root_ca_key_signs_only_with_approval(session, creds, clock, keystore):
    root = keystore.generate(session, "SM2-with-SM3", "root-ca/sm2", ["certificate"], actor="officer-1")
    issuing = keystore.generate(session, "SM2-with-SM3", "issuing-ca/sm2", ["certificate"], actor="officer-1")
    assert is_root_ca_key(root) and not is_root_ca_key(issuing)
    tbs = b"tbsCertificate of a subordinate CA"
    with pytest.raises(InvalidInput, match="root CA key"):
        keystore.sign(session, root, tbs, usage="certificate", actor="officer-1")
    keystore.sign(session, issuing, tbs, usage="certificate", actor="officer-1")
    parameters = {"data": tbs.hex(), "usage": "certificate", "prehashed": False, "purpose": "issue sub-CA"}
    with pytest.raises(InvalidInput, match="not a root CA key"):
        dual_control.request(session, keystore, "key.use-root", issuing.id, parameters,
                             credential=creds[0], clock=clock)
    req = dual_control.request(session, keystore, "key.use-root", root.id, parameters,
                               credential=creds[0], clock=clock)
    assert req.result is None
    done = dual_control.approve(session, keystore, req.id, credential=creds[1], clock=clock)
    session.commit()
    keystore.public_key(session, root).verify(bytes.fromhex(done.result["signature"]), tbs)
    assert (f"approval:{req.id}", "key.sign") in actions(session)


def test_exporting_a_key_needs_two_officers_and_an_exportable_key(session, creds, clock, keystore):
    fixed = keystore.generate(session, "SM2-with-SM3", "seal/1", ["seal"], actor="officer-1")
    with pytest.raises(InvalidInput, match="exportable"):
        dual_control.request(session, keystore, "key.export", fixed.id, {}, credential=creds[0], clock=clock)
    ref = keystore.generate(session, "SM2-with-SM3", "escrow/1", ["escrow"], exportable=True, actor="officer-1")
    req = dual_control.request(session, keystore, "key.export", ref.id, {}, credential=creds[0], clock=clock)
    assert req.result is None
    done = dual_control.approve(session, keystore, req.id, credential=creds[1], clock=clock)
    assert done.status == "executed" and done.result["wrapped"]["id"] == ref.id


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2048) | st.text(max_size=512).map(lambda t: f"-----BEGIN PRIVATE KEY-----\n{t}\n-----END PRIVATE KEY-----\n".encode()))
def test_any_credential_file_is_read_or_refused_cleanly(tmp_path, data):
    path = tmp_path / "fuzz.pem"
    path.write_bytes(data)
    path.chmod(0o600)
    with pytest.raises(InvalidInput):
        officers.load_credential(path)


def test_an_openssl_made_credential_works_and_approvals_verify_with_openssl(session, creds, clock, tmp_path):
    """An officer can make their key pair with OpenSSL; an auditor can check the stored
    approval signature with OpenSSL, against the statement rebuilt from the request."""
    key, public = tmp_path / "officer-4.pem", tmp_path / "officer-4.pub"
    openssl("genpkey", "-algorithm", "SM2", "-out", key)
    openssl("pkey", "-in", key, "-pubout", "-out", public)
    key.chmod(0o600)
    officers.enrol(session, "officer-4", "安全员4", public.read_text(), actor="test", clock=clock)
    session.commit()
    req = open_note(session, creds, clock)
    done = dual_control.approve(session, None, req.id, credential=officers.load_credential(key), clock=clock)
    session.commit()
    assert done.status == "executed" and done.approvals == ("officer-1", "officer-4")

    row = session.execute(select(dual_control.approval_requests).where(
        dual_control.approval_requests.c.id == req.id)).one()
    signature = session.execute(select(dual_control.approval_decisions.c.signature).where(
        dual_control.approval_decisions.c.request_id == req.id)).scalar_one()
    (tmp_path / "statement").write_bytes(officers.statement(
        decision="approve", request=req.id, action=row.action, target=row.target,
        parameters=json.loads(row.parameters), reason=""))
    (tmp_path / "sig.der").write_bytes(bytes.fromhex(signature))
    out = openssl("pkeyutl", "-verify", "-pubin", "-inkey", public, "-rawin", "-in", tmp_path / "statement",
                  "-digest", "sm3", "-pkeyopt", STANDARD_ID, "-sigfile", tmp_path / "sig.der")
    assert b"Signature Verified Successfully" in out.stdout
