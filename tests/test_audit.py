import itertools
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, strategies as st
from sqlalchemy import select, text

from api.cli.audit import audit as audit_command
from trust import audit
from trust.db import make_engine, session_factory, upgrade
from trust.errors import AuditChainBroken, InvalidInput

N = 6
TRUSTCTL = Path(sys.executable).parent / "trustctl"


def fixed_clock(start=datetime(2026, 11, 22, 3, 0, 0, 123456, tzinfo=UTC)):
    ticks = iter(range(10**6))
    return lambda: start + timedelta(seconds=next(ticks), microseconds=7)


@pytest.fixture
def chain(session):
    clock = fixed_clock()
    for i in range(1, N + 1):
        audit.append(session, f"officer-{i}", "seal.make", f"seal:{i}",
                     {"序号": i, "名称": "某某市市场监督管理局", "tags": ["a", [i, "乙"]]}, clock=clock)
    session.commit()
    return session


def raw(engine, *statements):
    """Tamper with the database directly, as someone with write access to it would."""
    with engine.begin() as connection:
        for statement, params in statements:
            connection.execute(text(statement), params)


def rehash(engine, seq, actor):
    """Give record `seq` another actor and a hash consistent with its new content."""
    with engine.connect() as connection:
        row = connection.execute(select(audit.audit_log).where(audit.audit_log.c.seq == seq)).one()
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)  # SQLite: naive UTC
    canonical = audit.canonical_record(seq, at, actor, row.action, row.target, json.loads(row.detail))
    raw(engine, ("UPDATE audit_log SET actor = :a, hash = :h WHERE seq = :s",
                 {"a": actor, "h": audit.record_hash(row.prev_hash, canonical), "s": seq}))


def swap(engine, a, b):
    raw(engine, ("UPDATE audit_log SET seq = -1 WHERE seq = :a", {"a": a}),
        ("UPDATE audit_log SET seq = :a WHERE seq = :b", {"a": a, "b": b}),
        ("UPDATE audit_log SET seq = :b WHERE seq = -1", {"b": b}))


def trustctl_audit(db_url, tmp_path, *args):
    env = {**os.environ, "TRUST_DATABASE_URL": db_url, "TRUST_HOME": str(tmp_path / "home")}
    return subprocess.run([str(TRUSTCTL), "audit", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_intact_chain_verifies(chain, db_url, tmp_path):
    report = audit.verify_chain(chain)
    assert report == audit.ChainReport(True, N, None, None, f"审计链完整，共 {N} 条记录",
                                       f"audit chain intact: {N} records")
    chain.rollback()  # on SQLite an open transaction holds the write lock
    done = trustctl_audit(db_url, tmp_path, "verify")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK") and f"{N} records" in done.stdout


def test_records_link_to_each_other(chain):
    rows = chain.execute(text("SELECT seq, prev_hash, hash FROM audit_log ORDER BY seq")).all()
    assert [r.seq for r in rows] == list(range(1, N + 1))
    assert rows[0].prev_hash == "0" * 64
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(rows))
    assert audit.head(chain) == audit.ChainHead(N, rows[-1].hash)


def test_append_returns_the_stored_record(session):
    clock = fixed_clock()
    record = audit.append(session, "alice", "key.destroy", "key:7", {"approvals": ["bob", "carol"]},
                          clock=clock)
    session.commit()
    assert record.seq == 1 and record.prev_hash == "0" * 64
    expected = audit.canonical_record(1, record.at, "alice", "key.destroy", "key:7",
                                      {"approvals": ["bob", "carol"]})
    assert record.hash == audit.record_hash("0" * 64, expected)
    assert expected == (b'{"action":"key.destroy","actor":"alice","at":"2026-11-22T03:00:00.123463Z",'
                        b'"detail":{"approvals":["bob","carol"]},"seq":1,"target":"key:7"}')


def test_append_is_part_of_the_callers_transaction(session):
    audit.append(session, "alice", "seal.make")
    session.rollback()
    assert audit.head(session) == audit.ChainHead(0, "0" * 64)
    assert audit.verify_chain(session).records_checked == 0


CASES = {
    "altered detail": (lambda e: raw(e, ("UPDATE audit_log SET detail = :d WHERE seq = 3",
                                         {"d": '{"序号":3,"名称":"伪造"}'})), 3, "altered"),
    "altered and rehashed": (lambda e: rehash(e, 3, "mallory"), 3, "altered"),
    "last altered and rehashed": (lambda e: rehash(e, N, "mallory"), N, "altered"),
    "middle deleted": (lambda e: raw(e, ("DELETE FROM audit_log WHERE seq = 3", {})), 3, "deleted"),
    "first deleted": (lambda e: raw(e, ("DELETE FROM audit_log WHERE seq = 1", {})), 1, "deleted"),
    "last deleted": (lambda e: raw(e, ("DELETE FROM audit_log WHERE seq = :n", {"n": N})), N, "deleted"),
    "swapped": (lambda e: swap(e, 2, 4), 2, "reordered"),
    "neighbours swapped": (lambda e: swap(e, 3, 4), 3, "reordered"),
    "first swapped": (lambda e: swap(e, 1, 5), 1, "reordered"),
}
# The five cases also run the installed `trustctl` as a real process (about 0.6 s
# each); all cases run the same command in-process.
AS_SUBPROCESS = {"altered detail", "altered and rehashed", "middle deleted", "last deleted", "swapped"}


@pytest.mark.parametrize("case", CASES)
def test_tampering_is_found(case, chain, engine, db_url, tmp_path):
    tamper, bad_seq, problem = CASES[case]
    tamper(engine)

    for batch_size in (1000, 2):  # rows are streamed in batches
        report = audit.verify_chain(chain, batch_size=batch_size)
        assert (report.ok, report.first_bad_seq, report.problem) == (False, bad_seq, problem)
        assert f"record {bad_seq} " in report.en and f"第 {bad_seq} 条" in report.zh
        assert report.records_checked == bad_seq - 1
        chain.rollback()  # on SQLite an open transaction holds the write lock

    said = f"record {bad_seq} {'was moved' if problem == 'reordered' else 'was ' + problem}"
    if case in AS_SUBPROCESS:
        done = trustctl_audit(db_url, tmp_path, "verify")
        assert done.returncode == 1, done.stderr
        assert said in done.stdout and f"第 {bad_seq} 条" in done.stdout
    in_process = CliRunner().invoke(audit_command, ["verify"], env={"TRUST_DATABASE_URL": db_url})
    assert in_process.exit_code == 1 and said in in_process.stdout

    in_process = CliRunner().invoke(audit_command, ["verify", "--json"], env={"TRUST_DATABASE_URL": db_url})
    assert in_process.exit_code == 1
    as_json = json.loads(in_process.stdout)
    assert (as_json["ok"], as_json["first_bad_seq"], as_json["problem"]) == (False, bad_seq, problem)


def test_deleted_head_is_found(chain, engine):
    raw(engine, ("DELETE FROM audit_head", {}))
    chain.rollback()
    assert audit.verify_chain(chain).problem == "deleted"
    with pytest.raises(AuditChainBroken):
        audit.append(chain, "alice", "seal.make")


def test_head_command_prints_the_anchor(chain, db_url, tmp_path):
    done = trustctl_audit(db_url, tmp_path, "head")
    assert done.returncode == 0, done.stderr
    last = audit.head(chain)
    assert done.stdout.split() == [str(N), last.hash]


def test_verify_on_an_uninitialised_database_says_so(tmp_path):
    done = trustctl_audit(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path, "verify")
    assert done.returncode == 5
    assert "trustctl init" in done.stderr


@pytest.fixture
def sqlite_session(tmp_path):
    """For checks made before any database access."""
    engine = make_engine(f"sqlite:///{tmp_path / 'trust.db'}")
    upgrade(engine)
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


@pytest.mark.parametrize("detail", [{"k": float("nan")}, {"k": object()}, {1: "a", "b": 2}, {"k": "\udc80"}])
def test_detail_must_be_plain_json(sqlite_session, detail):
    with pytest.raises(InvalidInput):
        audit.append(sqlite_session, "alice", "seal.make", detail=detail)


@pytest.mark.parametrize("actor", ["nul\x00byte", None])
def test_fields_must_be_text(sqlite_session, actor):
    with pytest.raises(InvalidInput):
        audit.append(sqlite_session, actor, "seal.make")


def test_naive_clock_is_refused(sqlite_session):
    with pytest.raises(InvalidInput):
        audit.append(sqlite_session, "alice", "seal.make", clock=datetime.now)


json_text = st.text(st.characters(exclude_categories=("Cs",)))
json_values = st.recursive(st.integers() | json_text,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_text, inner, max_size=4),
                           max_leaves=20)


@given(detail=st.dictionaries(json_text, json_values, max_size=6), seq=st.integers(1, 2**31 - 1),
       actor=json_text)
def test_canonical_record_is_deterministic_and_round_trips(detail, seq, actor):
    at = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=8)))
    encoded = audit.canonical_record(seq, at, actor, "act", "tgt", detail)
    reordered = dict(reversed(list(detail.items())))
    assert audit.canonical_record(seq, at, actor, "act", "tgt", reordered) == encoded
    assert json.loads(encoded.decode("utf-8")) == {
        "seq": seq, "at": "2026-01-01T19:04:05.000006Z", "actor": actor, "action": "act",
        "target": "tgt", "detail": detail}
    assert audit.canonical_json(json.loads(encoded)).encode("utf-8") == encoded


def test_refusals_anyone_can_cause_are_coalesced_per_key_and_minute(session):
    """The first of a minute is recorded, the repeats counted, and the count recorded when
    the key comes back in a later minute; the chain stays whole."""
    minute = datetime(2026, 12, 7, 4, 0, 5, tzinfo=UTC)
    times = iter([minute, minute + timedelta(seconds=10), minute + timedelta(seconds=50),
                  minute + timedelta(minutes=3), minute + timedelta(minutes=3, seconds=1)])
    for when in times:
        audit.append_coalesced(session, "anonymous", "api.refused", "/x", {"address": "203.0.113.9"},
                               key="api.refused:203.0.113.9:unauthenticated", clock=lambda when=when: when)
        audit.append_coalesced(session, "anonymous", "api.refused", "/x", {"address": "198.51.100.1"},
                               key="api.refused:198.51.100.1:unauthenticated", clock=lambda when=when: when)
    session.commit()
    rows = session.execute(select(audit.audit_log).order_by(audit.audit_log.c.seq)).all()
    mine = [(r.action, json.loads(r.detail)) for r in rows if "203.0.113.9" in r.detail]
    assert [action for action, _ in mine] == ["api.refused", "api.refused.repeated", "api.refused"]
    assert mine[1][1] == {"key": "api.refused:203.0.113.9:unauthenticated", "minute": "2026-12-07T04:00Z",
                          "repeats": 2}
    assert len(rows) == 6 and audit.verify_chain(session).ok
