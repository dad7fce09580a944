"""Security events for the security operations centre (等保 level 3, #19): what the SOC
must see — failed logins and lockouts, refused authorisations, approvals, key state
changes, audit chain and checkpoint failures — as RFC 5424 syslog messages over UDP or TCP
(``TRUST_SOC_SYSLOG=udp://host:port`` or ``tcp://host:port``) and/or JSON Lines appended to
a file (``TRUST_SOC_FILE``), with personal data masked (resident ID numbers, phone
numbers, names).

Most events are audit records (trust.audit.append hands each to ``note``), sent once the
transaction that holds them commits; the others (a failed login, a broken chain) are sent
at once with ``emit``. A message TCP cannot deliver waits in a spool file
(``TRUST_SOC_SPOOL``, default ``$TRUST_HOME/soc-spool.jsonl``, at most SPOOL_MAX messages:
the newest beyond are dropped and counted in the log) and goes first the next time the
receiver answers; the service never waits on the SOC beyond TIMEOUT_S. UDP is fire and
forget, as syslog over UDP is: use TCP where nothing may be lost.
"""

import json
import logging
import os
import re
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from trust.clock import utc_now
from trust.errors import InvalidInput

log = logging.getLogger(__name__)

TIMEOUT_S = 2.0
SPOOL_MAX = 10_000
FACILITY = 13          # RFC 5424 "log audit"
ENTERPRISE = 32473     # RFC 5612's example enterprise number, for the structured data's ID
APP_NAME = "trustctl"


class Severity(IntEnum):  # RFC 5424 §6.2.1
    CRITICAL = 2
    ERROR = 3
    WARNING = 4
    NOTICE = 5
    INFO = 6


# Audit actions that are security events, by the start of their name, most specific first.
_RULES = (("identity.lockout", Severity.WARNING), ("client.throttled", Severity.WARNING),
          ("identity.unlock", Severity.NOTICE), ("api.refused", Severity.WARNING),
          ("officer.denied", Severity.WARNING), ("approval.", Severity.NOTICE),
          ("key.state", Severity.NOTICE), ("key.destroy", Severity.NOTICE), ("key.export", Severity.NOTICE),
          ("key.escrow", Severity.NOTICE), ("seal.status", Severity.NOTICE), ("seal.refuse", Severity.WARNING),
          ("licence.use.refused", Severity.WARNING), ("audit.", Severity.INFO))


def severity_of(action: str) -> Severity | None:
    return next((severity for prefix, severity in _RULES if action.startswith(prefix)), None)


# ---------------------------------------------------------------- masking

_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9A-Za-z])")
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_NAME_KEYS = frozenset({"name", "holder_name", "display_name", "person_name", "legal_representative"})


def mask_text(text: str) -> str:
    """Resident ID numbers (GB 11643) keep their region and the last four characters, phone
    numbers their first three and last four digits."""
    return _PHONE.sub(r"\1****\2", _RESIDENT_ID.sub(lambda m: m[1] + "*" * 8 + m[2], text))


class MaskingFilter(logging.Filter):
    """Masks resident ID and phone numbers in every log line it passes, the exception's
    text included: an access log line carries the query string, an error message the input
    it refused. Put on a handler (it then sees what other loggers propagate to it) or on a
    logger that logs itself (gunicorn's access and error logs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
        return True


def mask_name(name: str) -> str:
    return name[:1] + "*" * (len(name) - 1) if len(name) > 1 else "*"


def mask(value, key: str = ""):
    """``value`` with personal data masked throughout: names under the keys that hold them,
    ID and phone numbers wherever they appear."""
    if isinstance(value, dict):
        return {k: mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, key) for v in value]
    if isinstance(value, str):
        return mask_name(value) if key in _NAME_KEYS else mask_text(value)
    return value


# ---------------------------------------------------------------- the events

@dataclass(frozen=True)
class Event:
    action: str
    severity: Severity
    actor: str
    target: str
    detail: dict
    at: datetime
    seq: int | None = None   # the audit record's, when the event is one

    def as_json(self) -> dict:
        return mask({"at": self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                     "severity": self.severity.name.lower(), "action": self.action, "actor": self.actor,
                     "target": self.target, "seq": self.seq, "detail": self.detail})

    def syslog(self, hostname: str) -> bytes:
        """RFC 5424: header, one structured data element, the masked event as JSON (UTF-8 with BOM)."""
        masked = self.as_json()
        params = " ".join(f'{name}="{_sd_escape(str(masked[name]))}"' for name in ("actor", "target", "seq")
                          if masked[name] not in (None, ""))
        header = (f"<{FACILITY * 8 + self.severity}>1 {masked['at']} {_token(hostname, 255)} {APP_NAME} "
                  f"{os.getpid()} {_token(self.action, 32)} [trust@{ENTERPRISE}{' ' + params if params else ''}] ")
        return header.encode() + b"\xef\xbb\xbf" + json.dumps(masked, ensure_ascii=False, sort_keys=True).encode()


def _token(text: str, limit: int) -> str:
    """A header field: printable ASCII without spaces (RFC 5424 §6), "-" when empty."""
    cleaned = "".join(c for c in text if 33 <= ord(c) <= 126)[:limit]
    return cleaned or "-"


def _sd_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


# ---------------------------------------------------------------- delivery

@dataclass(frozen=True)
class Config:
    syslog: tuple[str, str, int] | None = None   # (udp|tcp, host, port)
    file: Path | None = None
    spool: Path | None = None

    @classmethod
    def from_env(cls, environ=None) -> "Config":
        env = os.environ if environ is None else environ
        syslog = None
        if env.get("TRUST_SOC_SYSLOG"):
            url = urlsplit(env["TRUST_SOC_SYSLOG"].strip())
            try:
                port = url.port
            except ValueError:
                port = None
            if url.scheme not in ("udp", "tcp") or not url.hostname or port is None:
                raise InvalidInput("TRUST_SOC_SYSLOG is udp://host:port or tcp://host:port",
                                   "TRUST_SOC_SYSLOG 须为 udp://主机:端口 或 tcp://主机:端口")
            syslog = (url.scheme, url.hostname, port)
        home = Path(env.get("TRUST_HOME", "var"))
        file = Path(env["TRUST_SOC_FILE"]) if env.get("TRUST_SOC_FILE") else None
        spool = Path(env.get("TRUST_SOC_SPOOL") or home / "soc-spool.jsonl") if syslog else None
        return cls(syslog, file, spool)


class Sender:
    """Delivers events to the configured SOC sinks; one per process, thread-safe."""

    def __init__(self, config: Config):
        self.config = config
        self.configured = config.syslog is not None or config.file is not None
        self.hostname = socket.gethostname()
        self._lock = threading.Lock()

    def send(self, events: list[Event]) -> None:
        if not events or not self.configured:
            return
        with self._lock:
            if self.config.file is not None:
                self._append(self.config.file, [json.dumps(e.as_json(), ensure_ascii=False) for e in events])
            if self.config.syslog is not None:
                self._syslog(self.config.syslog, [e.syslog(self.hostname) for e in events])

    def _syslog(self, syslog: tuple[str, str, int], messages: list[bytes]) -> None:
        kind, host, port = syslog
        if kind == "udp":
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as udp:
                for message in messages:
                    try:
                        udp.sendto(message, (host, port))
                    except OSError as error:
                        log.warning("SOC syslog over UDP to %s:%s failed: %s", host, port, error)
            return
        spool = self.config.spool
        if spool is None:  # Config.from_env gives TCP a spool; a hand-made Config may not
            raise ValueError("syslog over TCP needs Config.spool")
        waiting = self._spooled(spool) + messages
        try:
            with socket.create_connection((host, port), timeout=TIMEOUT_S) as tcp:
                tcp.sendall(b"".join(b"%d %s" % (len(m), m) for m in waiting))  # RFC 6587 octet counting
        except OSError as error:
            log.warning("SOC syslog over TCP to %s:%s unreachable (%s): %d message(s) spooled",
                        host, port, error, len(waiting))
            self._spool(spool, waiting)
            return
        if spool.exists():
            spool.unlink()

    @staticmethod
    def _spooled(spool: Path) -> list[bytes]:
        try:
            lines = spool.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line).encode("utf-8", "surrogateescape") for line in lines if line]

    @staticmethod
    def _spool(spool: Path, messages: list[bytes]) -> None:
        kept = messages[:SPOOL_MAX]
        if len(messages) > SPOOL_MAX:
            log.warning("SOC spool full: %d message(s) dropped", len(messages) - SPOOL_MAX)
        text = "".join(json.dumps(m.decode("utf-8", "surrogateescape")) + "\n" for m in kept)
        temporary = spool.with_suffix(".tmp")
        temporary.write_text(text, encoding="utf-8")
        os.chmod(temporary, 0o600)
        temporary.replace(spool)

    @staticmethod
    def _append(path: Path, lines: list[str]) -> None:
        try:
            with open(path, "a", encoding="utf-8") as out:
                out.write("".join(line + "\n" for line in lines))
        except OSError as error:
            log.warning("SOC event file %s cannot be written: %s", path, error)


_sender: Sender | None = None
_sender_lock = threading.Lock()


def sender() -> Sender:
    """This process's sender, configured from the environment on first use."""
    global _sender
    with _sender_lock:
        if _sender is None:
            _sender = Sender(Config.from_env())
        return _sender


def reset() -> None:
    """Forget the configuration (tests, and a process whose environment changed)."""
    global _sender
    with _sender_lock:
        _sender = None


def emit(action: str, severity: Severity, actor: str, target: str = "", detail: dict | None = None) -> None:
    """An event that is not an audit record, sent now."""
    sender().send([Event(action, severity, actor, target, detail or {}, utc_now())])


_PENDING = "trust.events"


def note(session: Session, event: Event) -> None:
    """An audit record that is a security event: sent when ``session`` commits, dropped if it
    rolls back."""
    if not sender().configured:
        return
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        if not sa_event.contains(session, "after_commit", _send_pending):
            sa_event.listen(session, "after_commit", _send_pending)
            sa_event.listen(session, "after_rollback", _drop_pending)
    pending.append(event)


def _send_pending(session: Session) -> None:
    sender().send(session.info.pop(_PENDING, []))


def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
