"""licence/conversion.py and `trustctl licence convert` (issue #17, bulk conversion): rows of
a table become licences marked as converted with their source; bad and duplicate rows are
reported by row and field and nothing else stops; a rerun issues nothing twice; a run killed
halfway and run again leaves every row converted exactly once."""

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import func, select

from bench.server import TRUSTCTL
from licence import catalogue, conversion, types
from licence.models import licence_conversion, licences
from trust.db import make_engine, session_factory

from tests.licence_support import CLIENT, ENTERPRISE_USCC, FOOD, FOOD_FACE, USCC, VERIFY_URL, make_authority
from tests.serving import clean_env, trustctl

HEADER = ["经营者名称", "持证主体代码", *(f for f in FOOD_FACE if f != "licence_no"), "许可证编号"]


def _row(n: int, **changes) -> list[str]:
    values = {**FOOD_FACE, **changes}
    return ["福州测试餐饮有限公司", changes.get("holder_code", ENTERPRISE_USCC),
            *(values[f] for f in FOOD_FACE if f != "licence_no"), changes.get("licence_no", f"JY2350102{n:06d}1")]


def _csv(rows: list[list[str]], encoding="utf-8-sig") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


@pytest.fixture
def authority(session, tmp_path):
    return make_authority(session, tmp_path)


def _run(authority, data: bytes, name="licences.csv"):
    session, keystore = authority.world.session, authority.world.keystore
    licence_type = types.get(session, FOOD).licence_type
    rows = conversion.read_rows(data, name, licence_type)
    origin = conversion.provenance("2015—2020 年纸质许可证档案", name, data, "officer:test")
    return list(conversion.convert(session, keystore, rows, type_code=FOOD, issuer_code=USCC, client_id=CLIENT,
                                   origin=origin, verify_url=VERIFY_URL))


def test_a_gbk_table_converts_reports_bad_and_duplicate_rows_and_reruns_idempotently(authority):
    rows = [_row(1), _row(2), _row(3, complaint_phone="call us"), _row(4, licence_no="JY2350102000002" + "1"),
            _row(5, business_form="无此业态"), _row(6)]
    rows[3][-1] = "JY23501020000021"  # the licence number of row 3 of the file (the second data row): a duplicate
    data = _csv(rows, encoding="gbk")  # as Excel saves "CSV" on a Chinese Windows
    first = _run(authority, data)
    assert [r.outcome for r in first] == ["converted", "converted", "failed", "failed", "failed", "converted"]
    assert [r.row for r in first] == [2, 3, 4, 5, 6, 7]
    errors = [e for r in first for e in r.errors]
    assert [(e.row, e.field) for e in errors] == [(4, "complaint_phone"), (5, ""), (6, "business_form")]
    assert "duplicate" in errors[1].en and "第 3 行" in errors[1].zh
    report = list(csv.reader(io.StringIO(conversion.error_report(errors).decode("utf-8-sig"))))
    assert report[0] == ["row", "field", "说明", "message"] and len(report) == 4
    session = authority.world.session
    converted = session.execute(select(licence_conversion)).all()
    assert len(converted) == 3 and {c.source_row for c in converted} == {2, 3, 7}
    assert all(c.operator == "officer:test" and len(c.file_sha256) == 64 for c in converted)
    again = _run(authority, data)
    assert [r.outcome for r in again] == ["done_before", "done_before", "failed", "failed", "failed", "done_before"]
    assert session.execute(select(func.count()).select_from(licences)).scalar() == 3


def test_jsonl_rows_and_what_refuses_a_whole_file(authority):
    line = dict(zip(HEADER, _row(7), strict=True))
    first = _run(authority, (json.dumps(line, ensure_ascii=False) + "\n\n").encode(), name="rows.jsonl")
    assert [r.outcome for r in first] == ["converted"]
    licence_type = types.get(authority.world.session, FOOD).licence_type
    for data, name, words in ((_csv([_row(1)]).replace("许可证编号".encode(), "编号".encode()), "a.csv", "column"),
                              ("\ufeffrow".encode("utf-16"), "a.csv", "UTF-8"),
                              (b"x", "a.xls", "or .xlsx"), (b"", "a.csv", "empty"),
                              (b'[1, 2]\n', "a.jsonl", "object")):
        with pytest.raises(conversion.InvalidInput, match=words):
            conversion.read_rows(data, name, licence_type)


def _count(home) -> int:
    """Converted rows, read with a plain read-only connection (our sessions take SQLite's
    writer lock at BEGIN, which would queue the poll behind the converter)."""
    connection = sqlite3.connect(f"file:{home / 'trust.db'}?mode=ro", uri=True, timeout=5)
    try:
        return connection.execute("SELECT count(*) FROM licence_conversion").fetchone()[0]
    finally:
        connection.close()


def test_killed_halfway_and_run_again_every_row_is_converted_exactly_once(tmp_path):
    """`trustctl licence convert` on the demo service, killed with SIGKILL part way through,
    then run again: every row converted once, none twice, none half-issued."""
    env = clean_env(TRUST_HOME=str(tmp_path / "home"))
    init = trustctl(env, "init", "--demo")
    assert init.returncode == 0, init.stderr
    issuer = init.stdout.split("issuer_code=")[1].split()[0]
    officer = str(tmp_path / "home" / "officers" / "officer-1.pem")
    total = 40
    path = tmp_path / "licences.csv"
    path.write_bytes(_csv([_row(n) for n in range(1, total + 1)]))
    command = [TRUSTCTL, "licence", "convert", str(path), "--type", FOOD, "--issuer", issuer, "--source",
               "测试档案", "--credential", officer]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _count(tmp_path / "home") < total // 4 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    finished_alone = process.poll() is not None
    if not finished_alone:
        os.kill(process.pid, signal.SIGKILL)
    _out, err = process.communicate(timeout=30)
    done = _count(tmp_path / "home")
    assert not finished_alone and 0 < done < total, (done, err.decode(errors="replace")[-2000:])
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"Converted: {total - done}" in rerun.stdout and f"Done before: {done}" in rerun.stdout, rerun.stdout
    assert "rows/s" in rerun.stdout and "Converting" in rerun.stderr  # the rate; the progress bar
    engine = make_engine(f"sqlite:///{tmp_path / 'home' / 'trust.db'}")
    try:
        with session_factory(engine)() as session:
            numbers = session.execute(select(licence_conversion.c.licence_no)).scalars().all()
            issued = session.execute(select(func.count()).select_from(licences)
                                     .where(licences.c.type_code == FOOD)).scalar()
    finally:
        engine.dispose()
    assert len(numbers) == len(set(numbers)) == total and issued == total
    _pdfs_are_made_afterwards(env, tmp_path / "home", total)


def _pdfs_are_made_afterwards(env, home, total: int) -> None:
    """Converted licences are issued as sealed OFDs; `trustctl licence make-pdfs` then makes
    their PDFs (here three of them: --limit), and each verifies as the licence (registry,
    signature, time stamps)."""
    from ca import authority
    from licence.pdf_verify import licence_metadata
    from licence.verify import registry_lookup, verify_licence
    from trust import truststore
    engine = make_engine(f"sqlite:///{home / 'trust.db'}")
    try:
        with session_factory(engine)() as session:
            pending = session.execute(select(func.count()).select_from(licences).where(
                (licences.c.type_code == FOOD) & licences.c.pdf.is_(None))).scalar()
        assert pending == total
        made = trustctl(env, "licence", "make-pdfs", "--limit", "3")
        assert made.returncode == 0 and "PDFs made: 3" in made.stdout, made.stdout + made.stderr
        assert "Making PDFs" in made.stderr  # the progress bar
        with session_factory(engine)() as session:
            for ca in authority.list_authorities(session):
                truststore.import_roots(session, "licence", ca.certificate, actor="test")
            roots = tuple(c.der for c in truststore.trusted_roots(session, "licence"))
            assert session.execute(select(func.count()).select_from(licences).where(
                (licences.c.type_code == FOOD) & licences.c.pdf.is_(None))).scalar() == total - 3
            licence_id, pdf = session.execute(select(licences.c.licence_id, licences.c.pdf).where(
                (licences.c.type_code == FOOD) & licences.c.pdf.is_not(None)).limit(1)).one()
            report = verify_licence(pdf, lookup=registry_lookup(session), trusted_roots=roots)
            assert report.status.value == "VALID", report.to_dict()
            embedded, _changed = licence_metadata(pdf)
            assert embedded.licence_id == licence_id
    finally:
        engine.dispose()


def test_an_excel_workbook_converts_like_its_csv(authority, tmp_path):
    """An .xlsx written by openpyxl (an independent writer), read with our bounded zip and XML
    readers: shared strings, a number cell, a bad row reported; a zip that is no workbook refused."""
    import openpyxl
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER)
    sheet.append(_row(31))
    bad = _row(32, complaint_phone="call us")
    sheet.append(bad)
    row = _row(33)
    row[HEADER.index("complaint_phone")] = 12315  # typed as a number
    sheet.append(row)
    book.save(tmp_path / "licences.xlsx")
    data = (tmp_path / "licences.xlsx").read_bytes()
    results = _run(authority, data, name="licences.xlsx")
    assert [r.outcome for r in results] == ["converted", "failed", "converted"]
    assert [(e.row, e.field) for r in results for e in r.errors] == [(3, "complaint_phone")]
    licence_type = types.get(authority.world.session, FOOD).licence_type
    with pytest.raises(conversion.InvalidInput, match=r"xl/workbook\.xml"):
        conversion.read_rows(_zip({"a.txt": b"x"}), "a.xlsx", licence_type)
    with pytest.raises(conversion.InvalidInput, match="zip"):
        conversion.read_rows(b"PK\x03\x04 not really", "a.xlsx", licence_type)


def _zip(parts: dict[str, bytes]) -> bytes:
    import zipfile
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return out.getvalue()


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000), st.integers(0, 10**6), st.integers(1, 255))
def test_fuzz_a_damaged_workbook_is_refused_by_name_never_a_crash(junk, position, flip):
    """Random bytes and single changed bytes of a real workbook: rows, or our InvalidInput."""
    licence_type = catalogue.shipped()[FOOD]
    for data in (junk, _damaged(position, flip)):
        try:
            conversion.read_rows(data, "a.xlsx", licence_type)
        except conversion.InvalidInput:
            pass


def _damaged(position: int, flip: int) -> bytes:
    data = bytearray(_WORKBOOK)
    data[position % len(data)] ^= flip
    return bytes(data)


def _workbook() -> bytes:
    import openpyxl
    book = openpyxl.Workbook()
    book.active.append(HEADER)
    book.active.append(_row(1))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


_WORKBOOK = _workbook()
