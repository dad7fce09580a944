"""Bulk conversion submitted over HTTP by a department system: an asynchronous job
(licence/conversion.py does the rows) with its progress and its error report.

The file is checked as a whole when it is submitted (its format, its columns, the client's
right to issue the type for the issuer), so a bad file is refused at once; the job then
runs in the background, row after row, each row committed with its conversion record
exactly as `trustctl licence convert` does. The job keeps the file until it is done, and a
heartbeat with every row: a job whose runner died (the process restarted) is resumed by
whoever looks at it after ``STALE`` (conversion's exactly-once rule makes the rerun safe: a
row converted before is counted as done before, never issued twice). The counters and the
error report are rebuilt by the run that finishes.

Submitting the same file again for the same type and issuer while its job is unfinished
gives back that job.
"""

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import cast

from sqlalchemy import CursorResult, delete, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from hsm.keystore import KeyStore
from licence import conversion, registry
from licence.models import licence_import, licence_import_error
from licence.types import get as get_type
from trust import audit
from trust.clock import as_utc, iso_z, utc_now
from trust.errors import NotFound, TrustError

STALE = timedelta(minutes=2)       # no row takes this long: a runner silent for it has died
_running: set[str] = set()         # the jobs this process runs now
_lock = threading.Lock()


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class ImportJob:
    id: str
    client_id: str
    type_code: str
    issuer_code: str
    source: str
    file_name: str
    file_sha256: str
    status: JobStatus
    message: str | None
    total: int
    converted: int
    done_before: int
    failed: int
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None

    @property
    def processed(self) -> int:
        return self.converted + self.done_before + self.failed

    def stale(self, now: datetime) -> bool:
        """Whether nobody is running this unfinished job (queued, or silent for ``STALE``)."""
        return self.status == JobStatus.QUEUED or (
            self.status == JobStatus.RUNNING and (self.heartbeat_at is None or now - self.heartbeat_at > STALE))

    def to_dict(self, now: datetime) -> dict:
        """With the progress: percent, rate (rows/s since the run started) and the ETA."""
        elapsed = ((self.finished_at or now) - self.started_at).total_seconds() if self.started_at else 0
        rate = self.processed / elapsed if elapsed > 0 and self.processed else None
        left = self.total - self.processed
        return {"id": self.id, "status": self.status.value, "type_code": self.type_code,
                "issuer_code": self.issuer_code, "source": self.source, "file_name": self.file_name,
                "file_sha256": self.file_sha256, "message": self.message,
                "progress": {"total": self.total, "processed": self.processed, "converted": self.converted,
                             "done_before": self.done_before, "failed": self.failed,
                             "percent": round(100 * self.processed / self.total, 1) if self.total else 100.0,
                             "rows_per_s": round(rate, 2) if rate else None,
                             "eta_seconds": round(left / rate) if rate and self.status == JobStatus.RUNNING else None},
                "created_at": iso_z(self.created_at), "started_at": iso_z(self.started_at),
                "finished_at": iso_z(self.finished_at)}


def _job(row) -> ImportJob:
    return ImportJob(row.id, row.client_id, row.type_code, row.issuer_code, row.source, row.file_name,
                     row.file_sha256, JobStatus(row.status), row.message, row.total, row.converted, row.done_before,
                     row.failed, as_utc(row.created_at), as_utc(row.started_at), as_utc(row.heartbeat_at),
                     as_utc(row.finished_at))


_COLUMNS = [c for c in licence_import.c if c.name not in ("data", "runner")]


def get(session: Session, job_id, *, client_id: str | None = None) -> ImportJob:
    """A job; with ``client_id``, only that client's own."""
    row = session.execute(select(*_COLUMNS).where(licence_import.c.id == str(job_id)[:36])).one_or_none()
    if row is None or (client_id is not None and row.client_id != client_id):
        raise NotFound(en="no such import job", zh="没有这项导入任务")
    return _job(row)


def submit(session: Session, client_id: str, *, data: bytes, file_name: str, type_code: str, issuer_code: str,
           source: str, clock: Callable[[], datetime] = utc_now) -> tuple[ImportJob, bool]:
    """A queued job for ``data`` (a .csv, .jsonl or .xlsx table), or the unfinished job of the
    same file, type and issuer; ``True`` when it is new. InvalidInput for a bad file,
    PermissionDenied (audited: commit it) for a client that does not issue the type for the
    issuer. Audited. Does not commit."""
    licence_type = get_type(session, type_code).licence_type
    registry.check_issuer(session, licence_type.type_code, issuer_code, client_id)
    rows = conversion.read_rows(data, file_name, licence_type)
    origin = conversion.provenance(source, file_name, data, f"client:{client_id}")
    unfinished = session.execute(select(licence_import.c.id).where(
        (licence_import.c.client_id == client_id) & (licence_import.c.file_sha256 == origin.file_sha256)
        & (licence_import.c.type_code == type_code) & (licence_import.c.issuer_code == issuer_code)
        & licence_import.c.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]))).scalar()
    if unfinished is not None:
        return get(session, unfinished), False
    job_id = str(uuid.uuid4())
    session.execute(insert(licence_import).values(
        id=job_id, client_id=client_id, type_code=type_code, issuer_code=issuer_code, source=origin.source,
        file_name=origin.file_name, file_sha256=origin.file_sha256, data=data, status=JobStatus.QUEUED.value,
        total=len(rows), converted=0, done_before=0, failed=0, created_at=clock()))
    audit.append(session, f"client:{client_id}", "licence.import", job_id, {
        "type_code": type_code, "issuer_code": issuer_code, "source": origin.source, "file_name": origin.file_name,
        "file_sha256": origin.file_sha256, "rows": len(rows)})
    return get(session, job_id), True


def errors(session: Session, job_id: str) -> list[conversion.RowError]:
    rows = session.execute(select(licence_import_error).where(licence_import_error.c.import_id == job_id)
                           .order_by(licence_import_error.c.row, licence_import_error.c.id))
    return [conversion.RowError(r.row, r.field, r.zh, r.en) for r in rows]


def _claim(session: Session, job_id: str, now: datetime) -> bool:
    """Take the job if nobody runs it (compare and set its runner, so that of two processes
    seeing it stale one takes it); its counters and error report start again."""
    job = get(session, job_id)
    runner = session.execute(select(licence_import.c.runner).where(licence_import.c.id == job_id)).scalar()
    if not job.stale(now):
        return False
    same_runner = licence_import.c.runner.is_(None) if runner is None else licence_import.c.runner == runner
    taken = cast(CursorResult, session.execute(update(licence_import).where(
        (licence_import.c.id == job_id) & same_runner).values(
        status=JobStatus.RUNNING.value, runner=uuid.uuid4().hex, started_at=now, heartbeat_at=now, converted=0,
        done_before=0, failed=0))).rowcount == 1
    if taken:
        session.execute(delete(licence_import_error).where(licence_import_error.c.import_id == job_id))
    session.commit()
    return taken


_COUNTER = {conversion.Outcome.CONVERTED: licence_import.c.converted,
            conversion.Outcome.DONE_BEFORE: licence_import.c.done_before,
            conversion.Outcome.FAILED: licence_import.c.failed}


def run(sessions: sessionmaker, keystore: KeyStore, job_id: str, *, verify_url: str,
        clock: Callable[[], datetime] = utc_now) -> None:
    """Run the job if nobody else does; every row's outcome and errors are committed as it
    goes, with a heartbeat. A failure of the whole job (the issuer's right withdrawn, the
    key store gone) marks it failed with the reason."""
    with _lock:
        if job_id in _running:
            return
        _running.add(job_id)
    try:
        with sessions() as session:
            if not _claim(session, job_id, clock()):
                return
            job = get(session, job_id)
            data = session.execute(select(licence_import.c.data).where(licence_import.c.id == job_id)).scalar_one()
            try:
                rows = conversion.read_rows(data, job.file_name, get_type(session, job.type_code).licence_type)
                origin = conversion.Provenance(job.source, job.file_name, job.file_sha256, f"client:{job.client_id}")
                for result in conversion.convert(session, keystore, rows, type_code=job.type_code,
                                                 issuer_code=job.issuer_code, client_id=job.client_id,
                                                 origin=origin, verify_url=verify_url, clock=clock):
                    counter = _COUNTER[result.outcome]
                    session.execute(update(licence_import).where(licence_import.c.id == job_id)
                                    .values({counter: counter + 1, "heartbeat_at": clock()}))
                    for e in result.errors:
                        session.execute(insert(licence_import_error).values(import_id=job_id, row=e.row,
                                                                            field=e.field, zh=e.zh, en=e.en))
                    session.commit()
                status, message = JobStatus.DONE, None
            except TrustError as e:
                session.rollback()
                status, message = JobStatus.FAILED, f"{e.zh} / {e.en}"
            session.execute(update(licence_import).where(licence_import.c.id == job_id).values(
                status=status.value, message=message, finished_at=clock(), data=None))
            audit.append(session, f"client:{job.client_id}", "licence.import.finish", job_id,
                         {"status": status.value, "message": message})
            session.commit()
    finally:
        with _lock:
            _running.discard(job_id)


def start(sessions: sessionmaker, keystore: KeyStore, job_id: str, *, verify_url: str) -> None:
    """Run the job in a background thread of this process."""
    threading.Thread(target=run, args=(sessions, keystore, job_id), kwargs={"verify_url": verify_url},
                     name=f"licence-import-{job_id[:8]}", daemon=True).start()
