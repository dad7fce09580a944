"""licence/imports.py over HTTP (issue #17): a department system submits a table for bulk
conversion as an asynchronous job, follows its progress and fetches the error report; a bad
file is refused at once; a job whose runner died is resumed by whoever looks at it, and
converts nothing twice."""

import csv
import io
import time
from datetime import timedelta

from sqlalchemy import func, select, update

from licence import imports
from licence.models import licence_conversion, licence_import
from trust.clock import utc_now

from tests.fixtures.api import APP, audit_records, bearer
from tests.licence_support import FOOD, USCC
from tests.test_licence_conversion import _csv, _row


def _submit(app, client, data: bytes, name="存量许可证.csv", **form):
    fields = {"type_code": FOOD, "issuer_code": USCC, "source": "2018 年纸质档案第 3 批", **form}
    return client.post("/api/v1/licences/imports", data={**fields, "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data", headers=bearer(app, scopes=("licence:issue",)))


def _finished(app, client, location: str, timeout=120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(location, headers=bearer(app, scopes=("licence:issue",))).get_json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"the job did not finish: {job}")


def _converted(app) -> int:
    with app.extensions["trust.sessions"]() as session:
        return session.execute(select(func.count()).select_from(licence_conversion)).scalar()


def test_a_table_is_converted_as_a_job_with_progress_and_an_error_report(app, client, issuer):
    data = _csv([_row(1), _row(2), _row(3, complaint_phone="call us"), _row(4)], encoding="gb18030")
    submitted = _submit(app, client, data)
    assert submitted.status_code == 202, submitted.get_data(as_text=True)
    location = submitted.headers["Location"]
    assert location == f"/api/v1/licences/imports/{submitted.get_json()['id']}"
    assert submitted.get_json()["progress"]["total"] == 4
    job = _finished(app, client, location)
    assert job["status"] == "done", job
    progress = job["progress"]
    assert (progress["converted"], progress["done_before"], progress["failed"]) == (3, 0, 1)
    assert progress["percent"] == 100.0 and progress["rows_per_s"] > 0 and progress["eta_seconds"] is None
    [error] = job["errors"]
    assert error["row"] == 4 and error["field"] == "complaint_phone" and error["message"]["zh"]
    report = client.get(job["error_report"], headers=bearer(app, scopes=("licence:issue",)))
    assert report.status_code == 200 and report.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(report.data.decode("utf-8-sig"))))
    assert rows[0] == ["row", "field", "说明", "message"] and [r[:2] for r in rows[1:]] == [["4", "complaint_phone"]]
    assert _converted(app) == 3
    [(actor, _target, details)] = audit_records(app, "licence.import")
    assert actor.startswith("client:") and details["rows"] == 4 and details["file_name"] == "存量许可证.csv"
    assert [d["status"] for _a, _t, d in audit_records(app, "licence.import.finish")] == ["done"]

    again = _finished(app, client, _submit(app, client, data).headers["Location"])
    assert (again["progress"]["converted"], again["progress"]["done_before"], again["progress"]["failed"]) == (0, 3, 1)
    assert _converted(app) == 3  # nothing issued twice
    other = bearer(app, client_id="other-app", scopes=("licence:issue",))
    assert client.get(location, headers=other).status_code == 404
    assert client.get(job["error_report"], headers=other).status_code == 404


def test_a_bad_file_or_a_client_that_does_not_issue_is_refused_at_once(app, client, issuer):
    good = _csv([_row(1)])
    assert _submit(app, client, good, name="licences.txt").status_code == 400
    assert _submit(app, client, b"\xff\xfe\x00bad", name="licences.csv").status_code == 400
    assert _submit(app, client, "颜色,尺寸\n红,大\n".encode(), name="licences.csv").status_code == 400
    assert _submit(app, client, good, source="").status_code == 400
    assert _submit(app, client, good, type_code="11100000MB0143028R009").status_code == 404
    no_file = client.post("/api/v1/licences/imports", data={"type_code": FOOD}, content_type="multipart/form-data",
                          headers=bearer(app, scopes=("licence:issue",)))
    assert no_file.status_code == 400
    stranger = client.post("/api/v1/licences/imports", content_type="multipart/form-data", headers=bearer(
        app, client_id="other-app", scopes=("licence:issue",)), data={
        "type_code": FOOD, "issuer_code": USCC, "source": "x", "file": (io.BytesIO(good), "a.csv")})
    assert stranger.status_code == 403
    assert client.post("/api/v1/licences/imports", headers=bearer(app, scopes=("licence:read",))).status_code == 403
    with app.extensions["trust.sessions"]() as session:
        assert session.execute(select(func.count()).select_from(licence_import)).scalar() == 0


def test_a_job_whose_runner_died_is_resumed_by_the_next_look_and_converts_nothing_twice(app, client, issuer):
    data = _csv([_row(n) for n in range(1, 4)])
    with app.extensions["trust.sessions"]() as session:
        job, new = imports.submit(session, APP, data=data,
                                  file_name="a.csv", type_code=FOOD, issuer_code=USCC, source="档案")
        session.commit()
    assert new
    # a runner that took the job and died silently three minutes ago
    with app.extensions["trust.sessions"]() as session:
        session.execute(update(licence_import).where(licence_import.c.id == job.id).values(
            status="running", runner="dead", started_at=utc_now() - timedelta(minutes=3),
            heartbeat_at=utc_now() - timedelta(minutes=3)))
        session.commit()
        again, new = imports.submit(session, APP, data=data, file_name="a.csv", type_code=FOOD,
                                    issuer_code=USCC, source="档案")
        assert not new and again.id == job.id  # the same file while its job is unfinished: that job
    resumed = _finished(app, client, f"/api/v1/licences/imports/{job.id}")
    assert resumed["status"] == "done" and resumed["progress"]["converted"] == 3 and _converted(app) == 3
    with app.extensions["trust.sessions"]() as session:
        assert session.execute(select(licence_import.c.data).where(licence_import.c.id == job.id)).scalar() is None

