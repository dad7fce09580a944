"""Security events to the SOC (trust/events.py, #19 item 4): RFC 5424 syslog over UDP and
TCP to listeners on loopback (TCP's receiver down and back: spooled, then delivered in
order), JSON Lines to a file, audit records sent only once committed, failed logins, and
personal data masked in every event."""

import json
import random
import re
import socket
import threading
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings, strategies as st

from identity import authn, subjects
from trust import audit, events
from trust.errors import Unauthenticated
from trust.events import Config, Event, Sender, Severity
from trust.ids import generate_resident_id

SYSLOG = re.compile(rb"^<(\d+)>1 (\S+) (\S+) trustctl (\d+) (\S+) \[trust@32473([^\]]*)\] \xef\xbb\xbf(.*)$", re.S)
RID = generate_resident_id(random.Random(7), birth=date(1988, 3, 2))
PHONE = "13912345678"


def _event(**detail) -> Event:
    return Event("identity.lockout", Severity.WARNING, "identity", "account:zhangsan", detail,
                 datetime(2026, 12, 7, 12, 0, tzinfo=UTC), 42)


def test_personal_data_is_masked_wherever_it_is():
    masked = _event(name="张三丰", note=f"证件 {RID}，电话 {PHONE}", people=[{"holder_name": "欧阳修"}]).as_json()
    text = json.dumps(masked, ensure_ascii=False)
    assert RID not in text and PHONE not in text and "张三丰" not in text and "欧阳修" not in text
    assert masked["detail"]["name"] == "张**" and masked["detail"]["people"][0]["holder_name"] == "欧**"
    assert f"{RID[:6]}********{RID[-4:]}" in text and "139****5678" in text


@settings(max_examples=200)
@given(st.randoms(use_true_random=False), st.text(max_size=20), st.text(max_size=20))
def test_no_resident_id_or_phone_survives_masking(rng, before, after):
    rid = generate_resident_id(rng, birth=date(1970 + rng.randrange(50), 1 + rng.randrange(12), 1 + rng.randrange(28)))
    phone = f"1{rng.choice('3456789')}{rng.randrange(10 ** 9):09d}"
    masked = events.mask_text(f"{before} {rid} {phone} {after}")
    assert rid not in masked and phone not in masked


def test_the_syslog_message_is_rfc_5424():
    message = _event(address="10.0.0.7").syslog("trust-1")
    pri, timestamp, host, _pid, msgid, data, body = SYSLOG.match(message).groups()
    assert int(pri) == 13 * 8 + 4 and timestamp == b"2026-12-07T12:00:00.000000Z" and host == b"trust-1"
    assert msgid == b"identity.lockout" and b'actor="identity"' in data and b'seq="42"' in data
    assert json.loads(body)["detail"] == {"address": "10.0.0.7"}


def test_udp_delivery():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        sender = Sender(Config(("udp", "127.0.0.1", receiver.getsockname()[1])))
        sender.send([_event(note=f"ID {RID}")])
        message = receiver.recv(65536)
    assert SYSLOG.match(message) and RID.encode() not in message


class _TcpReceiver:
    """A syslog receiver over TCP with octet-counted frames (RFC 6587 §3.4.1)."""

    def __init__(self, port: int = 0):
        self.server = socket.create_server(("127.0.0.1", port))
        self.port = self.server.getsockname()[1]
        self.messages: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            while True:
                connection, _ = self.server.accept()
                with connection:
                    data = b""
                    while chunk := connection.recv(65536):
                        data += chunk
                while data:
                    length, _, rest = data.partition(b" ")
                    self.messages.append(rest[:int(length)])
                    data = rest[int(length):]
        except OSError:
            return

    def close(self):
        self.server.close()


def test_tcp_delivery_survives_the_receiver_being_down(tmp_path):
    placeholder = socket.socket()
    placeholder.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused, the port stays ours
    port = placeholder.getsockname()[1]
    sender = Sender(Config(("tcp", "127.0.0.1", port), spool=tmp_path / "spool.jsonl"))
    sender.send([_event(n=1), _event(n=2)])
    assert len((tmp_path / "spool.jsonl").read_text().splitlines()) == 2
    assert (tmp_path / "spool.jsonl").stat().st_mode & 0o777 == 0o600
    placeholder.close()
    receiver = _TcpReceiver(port)  # back
    try:
        sender.send([_event(n=3)])
        receiver.thread.join(timeout=0.5)
        for _ in range(50):
            if len(receiver.messages) == 3:
                break
            threading.Event().wait(0.05)
        assert [json.loads(SYSLOG.match(m).group(7))["detail"]["n"] for m in receiver.messages] == [1, 2, 3]
        assert not (tmp_path / "spool.jsonl").exists()
    finally:
        receiver.close()


@pytest.fixture
def soc_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUST_SOC_FILE", str(tmp_path / "soc.jsonl"))
    events.reset()
    yield tmp_path / "soc.jsonl"
    events.reset()


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_audit_records_that_are_security_events_go_once_committed(session, soc_file):
    audit.append(session, "identity", "identity.lockout", "account:x", {"username": "x"})
    audit.append(session, "alice", "seal.sign", "S-1", {})  # a use, not a security event
    assert _lines(soc_file) == []
    session.commit()
    assert [(e["action"], e["severity"], e["seq"]) for e in _lines(soc_file)] == [("identity.lockout", "warning", 1)]
    audit.append(session, "officer:1", "approval.approve", "R-1", {})
    session.rollback()
    assert len(_lines(soc_file)) == 1


def test_a_failed_login_is_an_event_without_the_persons_number(session, soc_file):
    rid = generate_resident_id(random.Random(3), birth=date(1990, 5, 17))
    subjects.create_person(session, username="zhangsan", password="Correct-Horse-42!", name="张三", resident_id=rid)
    session.commit()
    with pytest.raises(Unauthenticated):
        authn.authenticate_password(session, "zhangsan", "wrong password!", address="10.0.0.9")
    (event,) = _lines(soc_file)
    assert (event["action"], event["target"], event["detail"]) == ("identity.login.failed", "zhangsan",
                                                                   {"address": "10.0.0.9"})
    assert rid not in soc_file.read_text()


def test_a_bad_syslog_setting_is_refused():
    with pytest.raises(Exception, match="TRUST_SOC_SYSLOG"):
        Config.from_env({"TRUST_SOC_SYSLOG": "syslog.example:514"})
