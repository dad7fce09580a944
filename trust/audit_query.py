"""The auditor's view of the audit log (等保 level 3 审计, #19): search by time, actor,
action, target, purpose and outcome, a page at a time, and export with the chain proof.

A page is ordered by sequence number and continues ``after`` the last one shown, so paging
is stable while records are added. An export carries each record with the hashes that
chain it (``prev_hash``, ``hash``: SM3 of the previous hash and the record's canonical
form, trust.audit.canonical_record), so anyone can recompute every record's hash; a
contiguous range also shows each record linking to the one before. The caller records the
reading itself (``record_reading``): reading the audit log is audited.
"""

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from trust.audit import AuditRecord, append, audit_log
from trust.clock import as_utc, iso_z, parse_aware
from trust.errors import InvalidInput

MAX_PAGE = 1000
MAX_EXPORT = 100_000
MAX_TEXT = 200
OUTCOMES = ("refused", "done")
_REFUSED = ("%refused%", "%failed%", "%throttled%", "%denied%")


@dataclass(frozen=True)
class Query:
    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None      # exact, or a prefix ending in "*" ("client:*")
    action: str | None = None     # exact, or a prefix ending in "*" ("licence.*")
    target: str | None = None     # the object: a key, seal, licence or client id
    purpose: str | None = None    # the purpose a licence use declared
    outcome: str | None = None    # "refused" or "done"

    def __post_init__(self):
        for name in ("actor", "action", "target", "purpose"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value or len(value) > MAX_TEXT
                                      or "\x00" in value):
                raise InvalidInput(f"the {name} to search for is 1 to {MAX_TEXT} characters",
                                   f"检索条件 {name} 应为 1 至 {MAX_TEXT} 个字符")
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise InvalidInput(f"the outcome is one of {', '.join(OUTCOMES)}, not {str(self.outcome)[:20]!r}",
                               f"结果条件应为 {'、'.join(OUTCOMES)} 之一")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise InvalidInput(f"{name} is a time with its zone", f"{name} 应为带时区的时间")
        if self.since and self.until and self.since > self.until:
            raise InvalidInput("since is after until", "起始时间晚于截止时间")

    def as_dict(self) -> dict:
        return {k: (iso_z(v) if isinstance(v, datetime) else v) for k, v in self.__dict__.items() if v is not None}


def parse_time(value: str | None, name: str) -> datetime | None:
    """A time bound as given on the command line or in a query: ISO 8601 with its zone."""
    if value is None:
        return None
    parsed = parse_aware(value)
    if parsed is None:
        raise InvalidInput(f"{name} is an ISO 8601 time with its zone, e.g. 2026-12-07T00:00:00+08:00",
                           f"{name} 须为带时区的 ISO 8601 时间，如 2026-12-07T00:00:00+08:00")
    return parsed


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _text_match(column, value: str):
    if value.endswith("*"):
        return column.like(_like_escaped(value[:-1]) + "%", escape="\\")
    return column == value


def _statement(query: Query, after: int):
    statement = select(audit_log).where(audit_log.c.seq > after)
    # in UTC: SQLite keeps times as UTC text without a zone, and compares them as text
    if query.since:
        statement = statement.where(audit_log.c.at >= query.since.astimezone(UTC))
    if query.until:
        statement = statement.where(audit_log.c.at < query.until.astimezone(UTC))
    if query.actor:
        statement = statement.where(_text_match(audit_log.c.actor, query.actor))
    if query.action:
        statement = statement.where(_text_match(audit_log.c.action, query.action))
    if query.target:
        statement = statement.where(audit_log.c.target == query.target)
    if query.purpose:
        # details are canonical JSON (sorted keys, no spaces), so the member appears as written here
        member = json.dumps({"purpose": query.purpose}, ensure_ascii=False, separators=(",", ":"))[1:-1]
        statement = statement.where(audit_log.c.detail.like("%" + _like_escaped(member) + "%", escape="\\"))
    refused = or_(*(audit_log.c.action.like(p) for p in _REFUSED))
    if query.outcome == "refused":
        statement = statement.where(refused)
    elif query.outcome == "done":
        statement = statement.where(~refused)
    return statement.order_by(audit_log.c.seq)


def _record(row) -> AuditRecord:
    return AuditRecord(row.seq, as_utc(row.at), row.actor, row.action, row.target, json.loads(row.detail),
                       row.prev_hash, row.hash)


def search(session: Session, query: Query, *, after: int = 0, limit: int = 100) -> tuple[list[AuditRecord], int | None]:
    """A page of the records ``query`` selects, after the sequence number ``after``, and the
    ``after`` of the next page (None at the end)."""
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"a page holds 1 to {MAX_PAGE} records", f"每页 1 至 {MAX_PAGE} 条记录")
    if not isinstance(after, int) or after < 0:
        raise InvalidInput("after is a sequence number", "after 应为记录序号")
    rows = session.execute(_statement(query, after).limit(limit + 1)).all()
    records = [_record(row) for row in rows[:limit]]
    return records, (records[-1].seq if len(rows) > limit else None)


def export(session: Session, query: Query) -> Iterator[AuditRecord]:
    """Every record ``query`` selects, streamed; InvalidInput past MAX_EXPORT (narrow the range)."""
    count = 0
    for row in session.execute(_statement(query, 0).execution_options(yield_per=1000)):
        count += 1
        if count > MAX_EXPORT:
            raise InvalidInput(f"more than {MAX_EXPORT} records match: narrow the time range",
                               f"匹配记录超过 {MAX_EXPORT} 条，请缩小时间范围")
        yield _record(row)


# What counts as a use (使用频度), and what object and client each names: the seal signed
# with, the licence type issued, the key used; the client is the record's actor or the
# client the record names.
_USES = {
    "seal.sign": lambda r: (r.target, r.detail.get("client_id") or r.actor, 1),
    "licence.issue": lambda r: (r.detail.get("type_code", ""), r.actor, 1),
    "licence.convert": lambda r: (r.target, r.actor, 1),
    "licence.query": lambda r: ("", r.actor, 1),
    "licence.compare": lambda r: ("", r.actor, 1),
    "licence.present": lambda r: (r.target, r.actor, 1),
    "key.sign": lambda r: (f"{r.detail.get('usage', '')}:{r.target}", r.actor, int(r.detail.get("count", 1))),
}


def usage(session: Session, query: Query) -> list[dict]:
    """Uses by month, action, object and client, over the records ``query`` selects (its
    time range, usually), counted: seal signatures per seal and client, licences issued per
    type and issuer, queries per consumer, signatures per key and usage."""
    statement = _statement(query, 0).where(audit_log.c.action.in_(list(_USES))).execution_options(yield_per=1000)
    counts: dict[tuple, int] = {}
    for row in session.execute(statement):
        record = _record(row)
        thing, client, count = _USES[record.action](record)
        key = (record.at.strftime("%Y-%m"), record.action, str(thing), str(client))
        counts[key] = counts.get(key, 0) + count
    return [{"month": month, "action": action, "object": thing, "client": client, "count": count}
            for (month, action, thing, client), count in sorted(counts.items())]


def as_json(record: AuditRecord) -> dict:
    return {"seq": record.seq, "at": record.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "actor": record.actor,
            "action": record.action, "target": record.target, "detail": record.detail,
            "prev_hash": record.prev_hash, "hash": record.hash}


def json_line(record: AuditRecord) -> str:
    return json.dumps(as_json(record), ensure_ascii=False, separators=(",", ":")) + "\n"


CSV_COLUMNS = ("seq", "at", "actor", "action", "target", "detail", "prev_hash", "hash")


def csv_lines(records) -> Iterator[str]:
    """CSV (RFC 4180) with a header; ``detail`` as its canonical JSON, so each row's hash can
    be recomputed from the row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for record in records:
        row = as_json(record)
        row["detail"] = json.dumps(record.detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        writer.writerow([row[c] for c in CSV_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def record_reading(session: Session, actor: str, kind: str, query: Query, count: int | None = None) -> None:
    """Reading the audit log is itself audited: who, how (search or export), for what, and
    how many records a page showed. Does not commit."""
    detail: dict[str, object] = {"query": query.as_dict()}
    if count is not None:
        detail["records"] = count
    append(session, actor, f"audit.{kind}", "", detail)
