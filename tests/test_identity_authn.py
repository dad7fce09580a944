"""Authentication: passwords with one generic refusal, throttling and lockout per account
and per address (in the database, shared by workers), TOTP enrolment and verification
with codes from pyotp (an independent implementation), replay refused."""

import random
import threading
from datetime import UTC, date, datetime, timedelta

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from hsm.kek import FileKEK, create_master_key_file
from hsm.keystore import KeyStore, Usage
from hsm.soft import SoftBackend
from identity import authn, subjects, totp
from identity.models import identity_subject, identity_throttle
from trust import audit
from trust.db import make_engine, session_factory, upgrade
from trust.errors import Unauthenticated
from trust.ids import generate_resident_id

PASSWORD = "正确的口令 correct horse 1"
T0 = datetime(2026, 11, 22, 8, 0, 7, tzinfo=UTC)


class Clock:
    def __init__(self, at: datetime = T0):
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta) -> None:
        self.at += timedelta(**delta)


def _keystore(tmp_path) -> KeyStore:
    create_master_key_file(tmp_path / "master.key")
    return KeyStore([SoftBackend(FileKEK(tmp_path / "master.key"))], "soft")


def _person(session, username="zhangsan", seed=1):
    rid = generate_resident_id(random.Random(seed), birth=date(1990, 5, 17))
    return subjects.create_person(session, username=username, password=PASSWORD, name="张三", resident_id=rid)


def _officer(session):
    return subjects.create_officer(session, username="officer.li", password=PASSWORD, name="李四",
                                   staff_number="GA-0001", department="省市场监督管理局", roles=["seal-admin"])


@pytest.fixture
def lite(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'lite.db'}")
    upgrade(engine)
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


def _refused(session, username, password, address="10.0.0.1", clock=None):
    with pytest.raises(Unauthenticated) as raised:
        authn.authenticate_password(session, username, password, address=address, clock=clock or Clock())
    session.commit()  # as the login page does: the failure counts stay
    return raised.value


def _actions(session, action):
    return [r for r in _records(session) if r.action == action]


def _records(session):
    from trust.audit import audit_log
    return session.execute(select(audit_log).order_by(audit_log.c.seq)).all()


def test_password_login_and_one_message_for_every_failure(session):
    person = _person(session)
    disabled = _person(session, "lisi", seed=2)
    subjects.set_status(session, disabled.id, "disabled", actor="test")
    session.commit()
    assert authn.authenticate_password(session, "ZhangSan", PASSWORD, address="10.0.0.1") == person
    session.commit()
    messages = {(e.en, e.zh) for e in (
        _refused(session, "zhangsan", PASSWORD + "x"), _refused(session, "nobody", PASSWORD),
        _refused(session, "lisi", PASSWORD), _refused(session, "", ""), _refused(session, "a" * 10_000, "b"),
        _refused(session, "zhangsan", None))}
    assert len(messages) == 1 and "用户名或密码错误" in messages.pop()[1]
    logins = _actions(session, "identity.login")
    assert len(logins) == 1 and logins[0].target == person.id
    assert PASSWORD not in "".join(r.detail for r in _records(session))
    assert audit.verify_chain(session).ok


def test_account_lockout_and_its_end(session):
    person = _person(session)
    session.commit()
    clock = Clock()
    for i in range(authn.ACCOUNT_LIMIT):
        _refused(session, "zhangsan", f"wrong {i}", address=f"10.0.0.{i}", clock=clock)
    # Locked: even the right password is refused, from any address, with the same message.
    _refused(session, "zhangsan", PASSWORD, address="10.9.9.9", clock=clock)
    lockouts = _actions(session, "identity.lockout")
    assert [r.target for r in lockouts] == ["account:zhangsan"]
    clock.advance(minutes=14)
    _refused(session, "zhangsan", PASSWORD, clock=clock)
    clock.advance(minutes=1, seconds=1)
    assert authn.authenticate_password(session, "zhangsan", PASSWORD, address="10.0.0.1", clock=clock) == person
    session.commit()
    assert session.execute(select(identity_throttle).where(identity_throttle.c.key == "account:zhangsan")).first() is None


def test_success_resets_the_count_and_unlock(session):
    person = _person(session)
    session.commit()
    clock = Clock()
    for _ in range(3):
        for i in range(authn.ACCOUNT_LIMIT - 1):
            _refused(session, "zhangsan", f"wrong {i}", clock=clock)
        authn.authenticate_password(session, "zhangsan", PASSWORD, address="10.0.0.1", clock=clock)
        session.commit()
    for i in range(authn.ACCOUNT_LIMIT):
        _refused(session, "zhangsan", f"wrong {i}", clock=clock)
    _refused(session, "zhangsan", PASSWORD, clock=clock)
    authn.unlock(session, person.id, actor="officer:test")
    session.commit()
    assert authn.authenticate_password(session, "zhangsan", PASSWORD, address="10.0.0.1", clock=clock) == person


def test_failures_spread_out_do_not_lock(lite):
    _person(lite)
    lite.commit()
    clock = Clock()
    for _i in range(3 * authn.ACCOUNT_LIMIT):
        _refused(lite, "zhangsan", "wrong", clock=clock)
        clock.advance(minutes=4)  # at most 4 failures in any 15 minutes
    assert authn.authenticate_password(lite, "zhangsan", PASSWORD, address="10.0.0.1", clock=clock)


def test_address_lockout(lite):
    person = _person(lite)
    lite.commit()
    clock = Clock()
    # Guessing across many (unknown) accounts from one address: no account row grows.
    for i in range(authn.ADDRESS_LIMIT):
        _refused(lite, f"user{i:03d}", "guess", address="203.0.113.7", clock=clock)
    assert [r.target for r in _actions(lite, "identity.lockout")] == ["address:203.0.113.7"]
    _refused(lite, "user999", "guess", address="203.0.113.7", clock=clock)  # still locked for guessing
    _refused(lite, "zhangsan", "wrong", address="198.51.100.1", clock=clock)  # zhangsan now has a failure ...
    _refused(lite, "zhangsan", PASSWORD, address="203.0.113.7", clock=clock)  # ... so the locked address stops it
    assert authn.authenticate_password(lite, "zhangsan", PASSWORD, address="198.51.100.1", clock=clock) == person
    lite.commit()
    keys = set(lite.scalars(select(identity_throttle.c.key)))
    assert keys == {"address:203.0.113.7", "address:198.51.100.1"}  # the success cleared zhangsan's own count
    authn.unlock_address(lite, "203.0.113.7", actor="test")
    assert authn.authenticate_password(lite, "zhangsan", PASSWORD, address="203.0.113.7", clock=clock) == person


def test_neighbours_behind_one_address_cannot_lock_each_other_out(lite):
    """Issue 23, point 4: 100 failures from one address (60 on one account, 40 on unknown
    names). An account with no failures of its own still logs in from that address; the
    attacked account is locked for new browsers, but not for one it has logged in from."""
    victim, neighbour = _person(lite), _person(lite, username="lisi", seed=2)
    lite.commit()
    clock = Clock()
    device = authn.remember_device(lite, victim.id, clock=clock)  # the victim's own phone, logged in before
    lite.commit()
    nat = "100.64.0.1"
    for i in range(60):
        _refused(lite, "zhangsan", f"guess {i}", address=nat, clock=clock)
    for i in range(40):
        _refused(lite, f"nobody{i}", "guess", address=nat, clock=clock)
    assert authn.authenticate_password(lite, "lisi", PASSWORD, address=nat, clock=clock) == neighbour
    _refused(lite, "zhangsan", PASSWORD, address="198.51.100.9", clock=clock)  # a new browser: locked
    assert authn.authenticate_password(lite, "zhangsan", PASSWORD, address=nat, device=device,
                                       clock=clock) == victim
    lite.commit()


def test_a_trusted_device_is_throttled_on_its_own_failures(lite):
    person = _person(lite)
    lite.commit()
    clock = Clock()
    device = authn.remember_device(lite, person.id, clock=clock)
    other_person = _person(lite, username="lisi", seed=2)
    lite.commit()
    for i in range(authn.ACCOUNT_LIMIT):
        with pytest.raises(Unauthenticated):
            authn.authenticate_password(lite, "zhangsan", f"wrong {i}", address="10.0.0.1", device=device,
                                        clock=clock)
        lite.commit()
    with pytest.raises(Unauthenticated):
        authn.authenticate_password(lite, "zhangsan", PASSWORD, address="10.0.0.1", device=device, clock=clock)
    assert authn.authenticate_password(lite, "zhangsan", PASSWORD, address="10.0.0.2", clock=clock) == person
    with pytest.raises(Unauthenticated):  # the device cookie is for zhangsan only
        authn.authenticate_password(lite, "lisi", "wrong", address="10.0.0.3", device=device, clock=clock)
    assert other_person


def test_concurrent_failures_from_several_workers_lock_once(engine):
    """Workers with their own connections: every failure counts, the lock is set once."""
    factory = session_factory(engine)
    with factory() as session:
        _person(session)
        session.commit()
    errors = []

    def worker(n):
        with factory() as session:
            try:
                authn.authenticate_password(session, "zhangsan", f"wrong {n}", address=f"10.1.0.{n}")
            except Unauthenticated:
                session.commit()
            except Exception as e:
                errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(authn.ACCOUNT_LIMIT + 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    with factory() as session:
        row = session.execute(select(identity_throttle).where(identity_throttle.c.key == "account:zhangsan")).one()
        assert row.locked_until is not None
        assert len(_actions(session, "identity.lockout")) == 1
        with pytest.raises(Unauthenticated):
            authn.authenticate_password(session, "zhangsan", PASSWORD, address="10.2.0.1")


def test_old_hash_is_upgraded_on_login(lite):
    person = _person(lite)
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    lite.execute(update(identity_subject).values(password_hash=weak))
    authn.authenticate_password(lite, "zhangsan", PASSWORD, address="10.0.0.1")
    stored = lite.execute(select(identity_subject.c.password_hash).where(identity_subject.c.id == person.id)).scalar()
    assert stored != weak and "m=19456" in stored


def test_totp_enrol_confirm_verify_replay(session, tmp_path):
    keystore = _keystore(tmp_path)
    officer = _officer(session)
    assert authn.totp_required(officer) and not authn.totp_required(_person(session))
    secret, uri = authn.enrol_totp(session, keystore, officer.id)
    session.commit()
    app = pyotp.parse_uri(uri)  # the authenticator app
    assert app.secret == totp.base32(secret)
    [key] = keystore.list(session, label=authn.TOTP_KEY_LABEL)
    assert key.usages == frozenset({Usage.ENCRYPTION}) and key.algorithm == "SM2-with-SM3"
    stored = session.execute(select(identity_subject.c.totp_secret).where(identity_subject.c.id == officer.id)).scalar()
    assert secret not in stored and keystore.decrypt(session, key, stored, usage=Usage.ENCRYPTION) == secret
    assert not subjects.get_subject(session, officer.id).totp_enrolled

    clock = Clock()
    with pytest.raises(Unauthenticated):  # not confirmed yet
        authn.verify_totp(session, keystore, officer.id, app.at(clock()), clock=clock)
    authn.confirm_totp(session, keystore, officer.id, app.at(clock()), clock=clock)
    session.commit()
    assert subjects.get_subject(session, officer.id).totp_enrolled
    with pytest.raises(Unauthenticated) as raised:  # the same code again: a replay
        authn.verify_totp(session, keystore, officer.id, app.at(clock()), clock=clock)
    assert "动态口令" in raised.value.zh
    clock.advance(seconds=30)
    authn.verify_totp(session, keystore, officer.id, app.at(clock()), clock=clock)
    with pytest.raises(Unauthenticated):
        authn.verify_totp(session, keystore, officer.id, app.at(clock() - timedelta(seconds=30)), clock=clock)
    session.commit()
    # A second enrolment uses the same key and replaces the secret.
    authn.enrol_totp(session, keystore, officer.id)
    assert len(keystore.list(session, label=authn.TOTP_KEY_LABEL)) == 1
    assert not subjects.get_subject(session, officer.id).totp_enrolled
    assert audit.verify_chain(session).ok


def test_totp_brute_force_locks(lite, tmp_path):
    keystore = _keystore(tmp_path)
    officer = _officer(lite)
    _, uri = authn.enrol_totp(lite, keystore, officer.id)
    app = pyotp.parse_uri(uri)
    clock = Clock()
    authn.confirm_totp(lite, keystore, officer.id, app.at(clock()), clock=clock)
    clock.advance(seconds=30)
    right = app.at(clock())
    wrong = [f"{(int(right) + k) % 1_000_000:06d}" for k in range(1, authn.TOTP_LIMIT + 1)]
    for code in [*wrong, "", "abcdef", "1" * 100]:
        with pytest.raises(Unauthenticated):
            authn.verify_totp(lite, keystore, officer.id, code, clock=clock)
    with pytest.raises(Unauthenticated):  # locked: the right code is refused too
        authn.verify_totp(lite, keystore, officer.id, right, clock=clock)
    assert [r.target for r in _actions(lite, "identity.lockout")] == [f"totp:{officer.id}"]
    authn.unlock(lite, officer.id, actor="test")
    authn.verify_totp(lite, keystore, officer.id, right, clock=clock)


def test_totp_without_enrolment_is_refused(lite, tmp_path):
    person = _person(lite)
    with pytest.raises(Unauthenticated):
        authn.verify_totp(lite, _keystore(tmp_path), person.id, "123456")


def test_stale_counts_are_purged(session):
    clock = Clock()
    for i in range(5):
        _refused(session, "nobody", "guess", address=f"192.0.2.{i}", clock=clock)
    clock.advance(minutes=16)
    _refused(session, "nobody", "guess", address="192.0.2.99", clock=clock)
    assert set(session.scalars(select(identity_throttle.c.key))) == {"address:192.0.2.99"}
