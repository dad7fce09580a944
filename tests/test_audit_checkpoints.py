"""Signed audit checkpoints (hsm/checkpoints.py, #19): the tampering the chain alone cannot
see — the newest records cut and the head moved back, the chain rewritten consistently from
some record on — found through a checkpoint or an exported anchor, on SQLite and PostgreSQL;
a checkpoint's signature checked by openssl."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, update

from hsm import checkpoints
from hsm.checkpoints import FindingKind, Policy
from hsm.kek import FileKEK, create_master_key_file
from hsm.keystore import KeyStore
from hsm.soft import SoftBackend
from trust import audit
from trust.audit import audit_checkpoint, audit_head, audit_log
from trust.errors import InvalidInput

from oracles import STANDARD_ID, openssl

POLICY = Policy(records=1000, seconds=60)
T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


@pytest.fixture
def keystore(tmp_path):
    create_master_key_file(tmp_path / "master.key")
    return KeyStore([SoftBackend(FileKEK(tmp_path / "master.key"))], "soft")


def _log(session, count: int, at: datetime = T0) -> None:
    for i in range(count):
        audit.append(session, "alice", "test.append", detail={"i": i}, clock=lambda i=i: at + timedelta(seconds=i))
    session.commit()


def _checkpoint(session, keystore, at: datetime):
    made = checkpoints.make_checkpoint(session, keystore, clock=lambda: at)
    session.commit()
    return made


def _kinds(session, now=None) -> list[tuple[FindingKind, int]]:
    return [(f.kind, f.seq) for f in checkpoints.verify_checkpoints(session, POLICY, now=now or T0)]


def _rewrite_from(session, first: int) -> None:
    """What someone with the database can do: rewrite every record from ``first`` on, with
    hashes that chain, and move the head to match."""
    rows = session.execute(select(audit_log).where(audit_log.c.seq >= first).order_by(audit_log.c.seq)).all()
    prev = session.execute(select(audit_log.c.hash).where(audit_log.c.seq == first - 1)).scalar_one()
    for row in rows:
        at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
        detail = {"i": -1}
        digest = audit.record_hash(prev, audit.canonical_record(row.seq, at, row.actor, row.action, row.target,
                                                                detail))
        session.execute(update(audit_log).where(audit_log.c.seq == row.seq).values(
            detail=audit.canonical_json(detail), prev_hash=prev, hash=digest))
        prev = digest
    session.execute(update(audit_head).values(last_seq=rows[-1].seq, last_hash=prev))
    session.commit()


def test_a_checkpoint_signs_the_head_and_openssl_verifies_it(session, keystore, tmp_path):
    _log(session, 5)
    fifth = session.execute(select(audit_log.c.hash).where(audit_log.c.seq == 5)).scalar_one()
    made = _checkpoint(session, keystore, T0 + timedelta(seconds=10))
    assert (made.seq, made.hash) == (5, fifth)
    assert audit.head(session).seq == 7  # the key made on first need, and its use: audited after the head
    assert _checkpoint(session, keystore, T0 + timedelta(seconds=11)).seq == 7
    assert _checkpoint(session, keystore, T0 + timedelta(seconds=12)).seq == 8
    assert _checkpoint(session, keystore, T0 + timedelta(seconds=12)).seq == 9
    exported = checkpoints.export(session, keystore)
    (tmp_path / "statement").write_text(exported["statement"])
    (tmp_path / "signature").write_bytes(base64.b64decode(exported["signature"]))
    (tmp_path / "key.pem").write_text(exported["public_key"])
    openssl("dgst", "-sm3", "-sigopt", STANDARD_ID, "-verify", tmp_path / "key.pem", "-signature",
            tmp_path / "signature", tmp_path / "statement")
    assert json.loads(exported["statement"])["seq"] == exported["seq"] == 9
    assert _kinds(session, T0 + timedelta(seconds=20)) == [] and audit.verify_chain(session).ok


def test_the_newest_records_cut_and_the_head_moved_back_are_found(session, keystore):
    _log(session, 30)
    _checkpoint(session, keystore, T0 + timedelta(seconds=40))
    session.execute(delete(audit_log).where(audit_log.c.seq > 20))
    last = session.execute(select(audit_log.c.hash).where(audit_log.c.seq == 20)).scalar_one()
    session.execute(update(audit_head).values(last_seq=20, last_hash=last))
    session.commit()
    assert audit.verify_chain(session).ok  # the chain alone is fooled
    assert _kinds(session, T0 + timedelta(seconds=50)) == [(FindingKind.DELETED, 30)]


def test_the_newest_records_cut_without_moving_the_head_are_found_twice(session, keystore):
    _log(session, 30)
    _checkpoint(session, keystore, T0 + timedelta(seconds=40))
    session.execute(delete(audit_log).where(audit_log.c.seq > 20))
    session.commit()
    assert not audit.verify_chain(session).ok
    assert (FindingKind.DELETED, 30) in _kinds(session, T0 + timedelta(seconds=50))


def test_a_chain_rewritten_consistently_is_found_and_a_matching_checkpoint_is_a_forgery(session, keystore):
    _log(session, 30)
    _checkpoint(session, keystore, T0 + timedelta(seconds=40))
    _rewrite_from(session, 12)
    assert audit.verify_chain(session).ok
    assert _kinds(session, T0 + timedelta(seconds=50)) == [(FindingKind.REWRITTEN, 30)]
    rewritten = session.execute(select(audit_log.c.hash).where(audit_log.c.seq == 30)).scalar_one()
    session.execute(update(audit_checkpoint).values(hash=rewritten))  # without the key
    session.commit()
    assert _kinds(session, T0 + timedelta(seconds=50)) == [(FindingKind.FORGED, 30)]


def test_an_exported_anchor_finds_what_deleting_every_checkpoint_hid(session, keystore):
    _log(session, 30)
    _checkpoint(session, keystore, T0 + timedelta(seconds=40))
    anchor = checkpoints.parse_anchor(json.loads(json.dumps(checkpoints.export(session, keystore))))
    _rewrite_from(session, 12)
    session.execute(delete(audit_checkpoint))
    session.commit()
    assert [f.kind for f in checkpoints.verify_checkpoints(session, POLICY, now=T0 + timedelta(seconds=50))] == []
    assert [(f.kind, f.seq) for f in checkpoints.check_anchor(session, anchor)] == [(FindingKind.REWRITTEN, 30)]
    forged = checkpoints.parse_anchor({
        "statement": anchor.statement.decode().replace('"seq":30', '"seq":29'),
        "signature": base64.b64encode(anchor.signature).decode(), "public_key": anchor.public_key.to_pem()})
    assert [f.kind for f in checkpoints.check_anchor(session, forged)] == [FindingKind.FORGED]
    with pytest.raises(InvalidInput, match="not an exported audit checkpoint"):
        checkpoints.parse_anchor({"statement": "{}", "signature": "x", "public_key": "y"})


def test_checkpoints_fall_due_by_count_or_age_and_gaps_are_reported(session, keystore):
    """Times from now on: a checkpoint's own key use is audited at the real time."""
    now = datetime.now(UTC)
    _log(session, 3, at=now)
    policy = Policy(records=5, seconds=60)
    assert not checkpoints.due(session, policy, now=now + timedelta(seconds=30))
    assert checkpoints.due(session, policy, now=now + timedelta(seconds=60))
    _log(session, 2, at=now + timedelta(seconds=3))
    assert checkpoints.due(session, policy, now=now + timedelta(seconds=10))  # five records wait
    first = _checkpoint(session, keystore, now + timedelta(seconds=10))
    # from its key use on, records wait until now + 200 s for the next: more than twice the period
    _log(session, 2, at=now + timedelta(seconds=20))
    _checkpoint(session, keystore, now + timedelta(seconds=200))
    findings = checkpoints.verify_checkpoints(session, policy, now=now + timedelta(seconds=210))
    # (first.seq + 1 and + 2: making its key and using it, which call for no checkpoint)
    assert [(f.kind, f.seq, f.fails) for f in findings] == [(FindingKind.GAP, first.seq + 3, True)]
    _log(session, 1, at=now + timedelta(seconds=220))
    late = checkpoints.verify_checkpoints(session, policy, now=now + timedelta(seconds=400))
    assert [(f.kind, f.fails) for f in late] == [(FindingKind.GAP, True), (FindingKind.OVERDUE, False)]


def test_the_checkpointer_makes_what_is_due_and_only_once(engine, keystore):
    from trust.db import session_factory
    sessions = session_factory(engine)
    with sessions() as session:
        _log(session, 3, at=datetime.now(UTC) - timedelta(minutes=5))
    first = checkpoints.Checkpointer(sessions, keystore, POLICY)
    second = checkpoints.Checkpointer(sessions, keystore, POLICY)
    assert first.look().seq == 3
    assert second.look() is None  # the head (now the key uses) has waited for seconds only
    assert first.after_request("response") == "response"


def test_trustctl_signs_exports_and_checks_against_an_anchor(tmp_path):
    """As an auditor does it: sign a checkpoint, keep it elsewhere, and after the chain is
    rewritten and the checkpoints deleted, `audit verify --anchor` finds it (exit 1)."""
    from trust.db import make_engine, session_factory

    from tests.serving import clean_env, trustctl

    env = clean_env(TRUST_HOME=str(tmp_path / "home"))
    assert trustctl(env, "init").returncode == 0
    anchor = tmp_path / "anchor.json"
    made = trustctl(env, "audit", "checkpoint", "--export", str(anchor))
    assert made.returncode == 0 and "Checkpoint signed" in made.stderr, made.stderr
    assert json.loads(anchor.read_text())["type"] == "trust-audit-checkpoint/1"
    assert trustctl(env, "audit", "verify", "--anchor", str(anchor)).returncode == 0

    engine = make_engine(f"sqlite:///{tmp_path / 'home' / 'trust.db'}")
    with session_factory(engine)() as session:
        seq = json.loads(anchor.read_text())["seq"]
        _rewrite_from(session, seq - 1)
        session.execute(delete(audit_checkpoint))
        session.commit()
    engine.dispose()
    assert trustctl(env, "audit", "verify").returncode == 0  # the database alone no longer shows it
    checked = trustctl(env, "audit", "verify", "--anchor", str(anchor), "--json")
    assert checked.returncode == 1
    assert [f["kind"] for f in json.loads(checked.stdout)["findings"]] == ["rewritten"]
    (tmp_path / "bad.json").write_text('{"statement": 1}')
    assert trustctl(env, "audit", "verify", "--anchor", str(tmp_path / "bad.json")).returncode == 3
