"""Bulk conversion of existing licences (存量证照转换): each row of a table (CSV, JSON Lines,
.xlsx) becomes a licence of one type and issuer, issued as usual (checked, laid out, sealed,
recorded, audited) and marked as converted with its source: the operator's text, the row,
the SHA-256 of the file, and of the scanned paper licence when the row gives it.

Exactly once: a row is converted in its own transaction together with its conversion
record, whose (type, licence number) is unique, so a run that is interrupted (Ctrl-C, kill
-9) leaves every row either wholly converted or not at all, and a rerun converts only what
is missing. A row whose licence number was converted from another row or file is a
duplicate, reported, never issued twice.

Columns are the type's face field keys or their Chinese or English labels (a field printed
from the record, like 经营者名称, fills what it prints), and the holder:
``holder_name`` (持证主体名称), ``holder_code`` (持证主体代码), optionally
``holder_code_type`` (持证主体代码类型: 001 or 111, else told by the code's shape),
``valid_from`` / ``valid_to`` (有效期起始 / 有效期截止) and ``image_sha256`` (扫描件SHA256).
A CSV is UTF-8 (with or without BOM) or GBK/GB 18030, as Excel writes it in China.

A converted licence is issued as its sealed OFD, the licence as the standards define it; its
PDF rendition, when the issuer signs PDFs, is made afterwards by `trustctl licence
make-pdfs` (licence.issuance.add_pdf, run from cron or after a conversion): PAdES B-LTA
signing costs more than the rest of a row together, and a conversion of millions of paper
licences should not wait for renditions few will download.
"""

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hsm.keystore import KeyStore
from licence import issuance, registry
from licence.catalogue import LicenceType, Source
from licence.face import FaceInvalid
from licence.models import licence_conversion
from licence.types import get as get_type
from trust import audit
from trust.archive import child, child_text, children, local, parse_xml, read_zip, resolve
from trust.clock import utc_now
from trust.errors import InvalidInput, TrustError
from trust.ids import validate_uscc

MAX_FILE = 64 * 1024 * 1024
MAX_ROWS = 1_000_000
MAX_CELL = 10_000            # characters
MAX_SOURCE = 500
_HOLDER_COLUMNS = {
    "holder_name": ("holder_name", "持证主体名称", "持证主体"), "holder_code": ("holder_code", "持证主体代码"),
    "holder_code_type": ("holder_code_type", "持证主体代码类型"), "valid_from": ("valid_from", "有效期起始", "有效期自"),
    "valid_to": ("valid_to", "有效期截止", "有效期至"), "image_sha256": ("image_sha256", "扫描件SHA256"),
}
_SHA256 = re.compile(r"[0-9a-f]{64}")
# a face field printed from the record is filled by the row's column of the same meaning
_FROM_RECORD = {Source.HOLDER_NAME: "holder_name", Source.HOLDER_CODE: "holder_code", Source.VALID_FROM: "valid_from",
                Source.VALID_TO: "valid_to"}


class Outcome(StrEnum):
    CONVERTED = "converted"
    DONE_BEFORE = "done_before"          # this row of this file, converted by an earlier run
    FAILED = "failed"


@dataclass(frozen=True)
class Row:
    number: int                          # as a spreadsheet counts: the header is row 1
    values: dict[str, str]


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    zh: str
    en: str


@dataclass(frozen=True)
class RowResult:
    row: int
    outcome: Outcome
    licence_id: str | None = None
    errors: tuple[RowError, ...] = ()


def _text(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput("the file is neither UTF-8 nor GBK/GB 18030 text: save it as CSV UTF-8 and try again",
                       "文件既不是 UTF-8 也不是 GBK/GB 18030 文本：请另存为“CSV UTF-8”后重试")


def read_rows(data: bytes, name: str, licence_type: LicenceType) -> list[Row]:
    """The rows of a .csv or .jsonl file, with columns mapped to field keys; InvalidInput
    naming what is wrong with the file as a whole (a bad value is the row's, later)."""
    if len(data) > MAX_FILE:
        raise InvalidInput(f"the file is larger than {MAX_FILE // (1024 * 1024)} MB: split it",
                           f"文件超过 {MAX_FILE // (1024 * 1024)} MB，请拆分")
    if name.lower().endswith(".xlsx"):
        records = _xlsx(data)
    elif name.lower().endswith(".jsonl"):
        records = _jsonl(_text(data))
    elif name.lower().endswith(".csv"):
        records = _csv(_text(data))
    else:
        raise InvalidInput("convert a .csv, .jsonl or .xlsx file", "请转换 .csv、.jsonl 或 .xlsx 文件")
    columns = _columns(licence_type)
    rows: list = []
    for number, record in records:
        if len(rows) >= MAX_ROWS:
            raise InvalidInput(f"the file has more than {MAX_ROWS} rows: split it", f"文件超过 {MAX_ROWS} 行，请拆分")
        values = {}
        for column, value in record.items():
            key = columns.get(str(column).strip().lower())
            if key is None:
                raise InvalidInput(f"column '{str(column)[:40]}' is neither a field of {licence_type.name_en} nor a "
                                   f"holder column", f"列“{str(column)[:40]}”既不是{licence_type.name}的照面项，也不是持证主体列")
            value = "" if value is None else str(value).strip()
            if len(value) > MAX_CELL:
                raise InvalidInput(f"row {number}: a cell holds more than {MAX_CELL} characters",
                                   f"第 {number} 行有单元格超过 {MAX_CELL} 个字符")
            if value:
                values[key] = value
        if values:
            rows.append(Row(number, values))
    return rows


def _csv(text: str) -> Iterator[tuple[int, dict]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput("the file is empty", "文件为空") from None
    except csv.Error as e:
        raise InvalidInput(f"not a CSV file: {e}", f"不是 CSV 文件：{e}") from None
    if len(set(header)) != len(header):
        raise InvalidInput("the header names a column twice", "表头有重复的列")
    try:
        for cells in reader:
            if len(cells) > len(header):
                raise InvalidInput(f"row {reader.line_num} has more cells than the header", f"第 {reader.line_num} 行的"
                                                                                           f"单元格多于表头")
            yield reader.line_num, dict(zip(header, cells, strict=False))
    except csv.Error as e:
        raise InvalidInput(f"not a CSV file: {e}", f"不是 CSV 文件：{e}") from None


_RELATIONSHIP_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_CELL = re.compile(r"([A-Z]{1,3})[0-9]+")


def _xlsx(data: bytes) -> Iterator[tuple[int, dict]]:
    """The first worksheet of an Office Open XML workbook, through trust/archive's bounded zip
    and XML readers (no entities, no network): shared strings, inline strings and numbers as
    written. A date cell is a serial number, not a date: format date columns as text."""
    parts = read_zip(data)

    def xml(name: str):
        if name not in parts:
            raise InvalidInput(f"not an .xlsx workbook: it has no {name}", f"不是 .xlsx 工作簿：缺少 {name}")
        return parse_xml(parts[name], name)

    sheets = child(xml("xl/workbook.xml"), "sheets")
    sheet = child(sheets, "sheet") if sheets is not None else None
    relation = next((r for r in children(xml("xl/_rels/workbook.xml.rels"), "Relationship")
                     if sheet is not None and r.get("Id") == sheet.get(_RELATIONSHIP_ID)), None)
    target = resolve("xl/workbook.xml", relation.get("Target", "")) if relation is not None else None
    rows = child(xml(target or "xl/worksheets/sheet1.xml"), "sheetData")
    strings = [] if "xl/sharedStrings.xml" not in parts else [
        "".join(t.text or "" for t in si.iter() if local(t.tag) == "t" and local(t.getparent().tag) in ("si", "r"))
        for si in children(xml("xl/sharedStrings.xml"), "si")]
    header: dict[str, str] = {}
    for row in children(rows, "row") if rows is not None else ():
        cells = {}
        for cell in children(row, "c"):
            column = _CELL.fullmatch(cell.get("r", ""))
            if column is None:
                raise InvalidInput("a cell of the worksheet has no A1-style reference", "工作表中有单元格缺少 A1 式引用")
            cells[column.group(1)] = _cell_text(cell, strings)
        number = int(row.get("r", "0")) if row.get("r", "").isdigit() else 0
        if not header:
            header = {column: value for column, value in cells.items() if value}
            continue
        if set(cells) - set(header) and any(cells[c] for c in set(cells) - set(header)):
            raise InvalidInput(f"row {number} has a cell in a column without a header", f"第 {number} 行有单元格不在表头列内")
        yield number, {header[c]: v for c, v in cells.items() if c in header}
    if not header:
        raise InvalidInput("the worksheet is empty", "工作表为空")


def _cell_text(cell, strings: list[str]) -> str:
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        return "".join(t.text or "" for t in cell.iter() if local(t.tag) == "t")
    value = child_text(cell, "v") or ""
    if kind == "s":
        if not value.isdigit() or int(value) >= len(strings):
            raise InvalidInput("a cell refers to a shared string the workbook does not have",
                               "单元格引用了工作簿中不存在的共享字符串")
        return strings[int(value)]
    if kind == "n" and value.endswith(".0"):
        return value[:-2]  # a whole number some writers store as a float ("10000000.0")
    return value


def _jsonl(text: str) -> Iterator[tuple[int, dict]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            raise InvalidInput(f"line {number} is not JSON: {e}", f"第 {number} 行不是 JSON：{e}") from None
        if not isinstance(record, dict) or not all(isinstance(v, (str, int, float, type(None))) and
                                                   not isinstance(v, bool) for v in record.values()):
            raise InvalidInput(f"line {number} is not an object of texts and numbers",
                               f"第 {number} 行不是由文本和数字组成的对象")
        yield number, record


def _columns(licence_type: LicenceType) -> dict[str, str]:
    """Every accepted column name, lower case, to what it fills."""
    names = {alias.lower(): key for key, aliases in _HOLDER_COLUMNS.items() for alias in aliases}
    for f in licence_type.fields:
        target = f.key if f.source is None else _FROM_RECORD.get(f.source)
        if target is not None:  # the issuer and the issue date are this conversion's, never a row's
            names.update({f.key.lower(): target, f.label.lower(): target, f.label_en.lower(): target})
    return names


def request_of(licence_type: LicenceType, issuer_code: str, values: dict[str, str]) -> dict:
    """The issuance request (licence.issuance) a row stands for."""
    code = values.get("holder_code", "")
    code_type = values.get("holder_code_type")
    if code_type is None:
        try:
            validate_uscc(code)
            code_type = "001"
        except InvalidInput:
            code_type = "111"
    body = {"type_code": licence_type.type_code, "issuer_code": issuer_code,
            "holder": {"name": values.get("holder_name", ""), "code": code, "code_type": code_type},
            "face": {k: v for k, v in values.items() if k not in _HOLDER_COLUMNS}}
    if "valid_from" in values or "valid_to" in values:
        body["validity"] = {k: values[f"valid_{k}"] for k in ("from", "to") if f"valid_{k}" in values}
    return body


@dataclass(frozen=True)
class Provenance:
    source: str
    file_name: str
    file_sha256: str
    operator: str


def provenance(source: str, file_name: str, data: bytes, operator: str) -> Provenance:
    source = source.strip()
    if not 0 < len(source) <= MAX_SOURCE or not source.isprintable():
        raise InvalidInput(f"--source is 1 to {MAX_SOURCE} printable characters saying where the rows come from",
                           f"来源说明须为 1 至 {MAX_SOURCE} 个可打印字符")
    return Provenance(source, file_name[-200:], hashlib.sha256(data).hexdigest(), operator)


def convert_row(session: Session, keystore: KeyStore, licence_type: LicenceType, issuer_code: str, row: Row, *,
                client_id: str, origin: Provenance, verify_url: str,
                clock: Callable[[], datetime] = utc_now) -> RowResult:
    """One row, converted in the caller's transaction (commit it), or its errors (roll back)."""
    image = row.values.get("image_sha256", "").lower()
    try:
        if image and not _SHA256.fullmatch(image):
            raise InvalidInput("image_sha256 is 64 hex digits", "扫描件SHA256 须为 64 位十六进制数")
        ready = issuance.draft(session, request_of(licence_type, issuer_code, row.values), client_id=client_id,
                               clock=clock)
        licence_no = ready.printed()[licence_type.licence_no]
        earlier = session.execute(select(licence_conversion).where(
            (licence_conversion.c.type_code == licence_type.type_code)
            & (licence_conversion.c.licence_no == licence_no))).one_or_none()
        if earlier is not None:
            if earlier.file_sha256 == origin.file_sha256 and earlier.source_row == row.number:
                return RowResult(row.number, Outcome.DONE_BEFORE, earlier.licence_id)
            raise InvalidInput(f"licence number {licence_no} was converted before (row {earlier.source_row} of "
                               f"{earlier.file_name}): a duplicate, not issued again",
                               f"证照编号 {licence_no} 已转换过（{earlier.file_name} 第 {earlier.source_row} 行），重复行，不再签发")
        record = issuance.issue_draft(session, keystore, ready, client_id=client_id, actor=origin.operator,
                                      verify_url=verify_url, with_pdf=False, clock=clock)
        details = {"source": origin.source, "file_name": origin.file_name, "file_sha256": origin.file_sha256,
                   "row": row.number, "image_sha256": image or None}
        session.execute(insert(licence_conversion).values(
            licence_id=record.licence_id, type_code=licence_type.type_code, licence_no=licence_no,
            source=origin.source, file_name=origin.file_name, file_sha256=origin.file_sha256, source_row=row.number,
            image_sha256=image or None, operator=origin.operator, converted_at=record.created_at))
        audit.append(session, origin.operator, "licence.convert", record.licence_id, details)
        return RowResult(row.number, Outcome.CONVERTED, record.licence_id)
    except FaceInvalid as e:
        return RowResult(row.number, Outcome.FAILED, errors=tuple(RowError(row.number, f.key, f.zh, f.en)
                                                                  for f in e.errors))
    except TrustError as e:
        return RowResult(row.number, Outcome.FAILED, errors=(RowError(row.number, "", e.zh, e.en),))


def convert(session: Session, keystore: KeyStore, rows: list[Row], *, type_code: str, issuer_code: str,
            client_id: str, origin: Provenance, verify_url: str,
            clock: Callable[[], datetime] = utc_now) -> Iterator[RowResult]:
    """Every row, each committed on its own (a failed one rolled back), so that an
    interrupted run keeps exactly what it finished. The client's right to issue is checked
    once, first (PermissionDenied, audited and committed)."""
    licence_type = get_type(session, type_code).licence_type
    try:
        registry.check_issuer(session, licence_type.type_code, issuer_code, client_id)
    except TrustError:
        session.commit()
        raise
    session.commit()
    for row in rows:
        try:
            result = convert_row(session, keystore, licence_type, issuer_code, row, client_id=client_id,
                                 origin=origin, verify_url=verify_url, clock=clock)
            if result.outcome is Outcome.CONVERTED:
                session.commit()
            else:
                session.rollback()
        except IntegrityError:  # another converter took this licence number at the same moment
            session.rollback()
            result = RowResult(row.number, Outcome.FAILED, errors=(RowError(
                row.number, "", "该证照编号正由另一转换任务签发，请稍后重新运行",
                "another conversion is issuing this licence number: run again later"),))
        yield result


def error_report(errors: list[RowError]) -> bytes:
    """The per-row error report: CSV (UTF-8 with BOM, for Excel) of row, field, 说明, message."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "field", "说明", "message"])
    for e in errors:
        writer.writerow([e.row, e.field, e.zh, e.en])
    return out.getvalue().encode("utf-8-sig")
