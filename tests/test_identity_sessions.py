"""Login sessions: a random cookie whose SM3 hash alone is stored, idle and absolute
timeouts, logout, logout everywhere."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from gmssl import sm3 as gm_sm3
from sqlalchemy import select

from identity import sessions
from identity.models import identity_login_session
from trust.errors import InvalidInput

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
SUBJECT = "a" * 32


class Clock:
    def __init__(self):
        self.at = T0

    def __call__(self):
        return self.at


def test_start_and_load(session):
    clock = Clock()
    cookie, login = sessions.start_session(session, SUBJECT, amr=["pwd", "otp"], acr="urn:x:mfa",
                                           address="10.0.0.1", clock=clock)
    session.commit()
    assert len(base64.urlsafe_b64decode(cookie + "=")) == 32
    row = session.execute(select(identity_login_session)).one()
    # Only the SM3 hash is kept (checked with gmssl, an independent SM3).
    assert row.cookie_hash == gm_sm3.sm3_hash(list(cookie.encode())) and cookie not in str(tuple(row))
    assert login.subject_id == SUBJECT and login.amr == ("pwd", "otp") and login.acr == "urn:x:mfa"
    assert login.auth_time == T0 and login.expires_at == T0 + sessions.ABSOLUTE_TIMEOUT
    assert sessions.load_session(session, cookie, clock=clock) == login
    other, _ = sessions.start_session(session, SUBJECT, amr=["pwd"], acr="urn:x:pwd", address="", clock=clock)
    assert other != cookie


def test_idle_and_absolute_timeouts(session):
    clock = Clock()
    cookie, _ = sessions.start_session(session, SUBJECT, amr=["pwd"], acr="pwd", address="", clock=clock)
    # Used every 29 minutes, the session lives until its absolute end.
    while clock.at + timedelta(minutes=29) < T0 + sessions.ABSOLUTE_TIMEOUT:
        clock.at += timedelta(minutes=29)
        assert sessions.load_session(session, cookie, clock=clock) is not None
        session.commit()
    clock.at = T0 + sessions.ABSOLUTE_TIMEOUT
    assert sessions.load_session(session, cookie, clock=clock) is None
    session.commit()
    assert session.execute(select(identity_login_session)).first() is None  # deleted

    clock.at = T0
    cookie, _ = sessions.start_session(session, SUBJECT, amr=["pwd"], acr="pwd", address="", clock=clock)
    clock.at += sessions.IDLE_TIMEOUT
    assert sessions.load_session(session, cookie, clock=clock) is None


def test_end_session_and_end_sessions_of(session):
    clock = Clock()
    first, _ = sessions.start_session(session, SUBJECT, amr=["pwd"], acr="pwd", address="", clock=clock)
    second, _ = sessions.start_session(session, SUBJECT, amr=["pwd"], acr="pwd", address="", clock=clock)
    third, _ = sessions.start_session(session, "b" * 32, amr=["pwd"], acr="pwd", address="", clock=clock)
    sessions.end_session(session, first)
    sessions.end_session(session, "unknown")
    sessions.end_session(session, "x" * 10_000)
    assert sessions.load_session(session, first, clock=clock) is None
    assert sessions.load_session(session, second, clock=clock) is not None
    assert sessions.end_sessions_of(session, SUBJECT) == 1
    assert sessions.load_session(session, second, clock=clock) is None
    assert sessions.load_session(session, third, clock=clock) is not None


def test_bad_cookies_open_nothing(session):
    for cookie in ("", "x" * 129, "é" * 10, None, 42, "AAAA"):
        assert sessions.load_session(session, cookie) is None


def test_bad_arguments(session):
    with pytest.raises(InvalidInput):
        sessions.start_session(session, SUBJECT, amr=[], acr="pwd", address="")
    with pytest.raises(InvalidInput):
        sessions.start_session(session, SUBJECT, amr=["p w d"], acr="pwd", address="")
    with pytest.raises(InvalidInput):
        sessions.start_session(session, SUBJECT, amr=["pwd"], acr="", address="")


def test_cookie_names():
    assert sessions.cookie_name(True) == "__Host-trust_session" == sessions.SESSION_COOKIE
    assert sessions.cookie_name(False) == "trust_session"


def test_logins_purge_ended_sessions(session):
    clock = Clock()
    old = [sessions.start_session(session, SUBJECT, amr=["pwd"], acr="pwd", address="", clock=clock)[0]
           for _ in range(3)]
    clock.at += sessions.IDLE_TIMEOUT + timedelta(seconds=1)
    sessions.start_session(session, SUBJECT, amr=["pwd"], acr="pwd", address="", clock=clock)
    session.commit()
    assert len(session.execute(select(identity_login_session)).all()) == 1
    assert all(sessions.load_session(session, cookie, clock=clock) is None for cookie in old)
