"""Issue #17's acceptance run of bulk conversion, whole: `make bench-conversion`.

10,000 rows of a 食品经营许可证 table, 1 % of them bad (a complaint telephone that is no
telephone number), converted by `trustctl licence convert` on a fresh demo service; the
run is killed (SIGKILL) at about half and run again. Afterwards: every good row issued
once (9,900 licences, each with its conversion record, no licence number twice, nothing
issued without its record), every bad row in the error report, and the time both runs
took together, sealed OFD included (the PDFs come later, from `trustctl licence
make-pdfs`). Prints one JSON line. About ten minutes on the 2-core development machine,
so it is not part of `make bench`.
"""

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.server import TRUSTCTL, environment, free_port

ROWS = 10_000
BAD_EVERY = 100          # 1 %
FOOD = "11100000MB0143028R002"
FACE = {"legal_representative": "李四", "domicile": "福州市鼓楼区测试路2号", "premises": "福州市鼓楼区测试路2号一层",
        "business_form": "餐饮服务经营者", "items": "热食类食品制售；冷食类食品制售", "supervising_body": "鼓楼区市场监督管理局",
        "supervisors": "王五", "complaint_phone": "12315", "signed_by": "赵六"}


def _table() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["经营者名称", "持证主体代码", "许可证编号", *FACE])
    for n in range(ROWS):
        face = {**FACE, "complaint_phone": "call us"} if n % BAD_EVERY == BAD_EVERY - 1 else FACE
        writer.writerow([f"福州测试餐饮有限公司第{n}店", "91350100M000100Y43", f"JY2350102{n:06d}1", *face.values()])
    return out.getvalue().encode("utf-8-sig")


def _query(home: Path, sql: str) -> int:
    connection = sqlite3.connect(f"file:{home / 'trust.db'}?mode=ro", uri=True, timeout=30)
    try:
        return connection.execute(sql).fetchone()[0]
    finally:
        connection.close()


def run() -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-conversion-") as tmp:
        home = Path(tmp) / "home"
        env = environment(home, free_port())
        init = subprocess.run([TRUSTCTL, "init", "--demo"], env=env, capture_output=True, text=True, timeout=300,
                              check=True)
        issuer = init.stdout.split("issuer_code=")[1].split()[0]
        table = Path(tmp) / "licences.csv"
        table.write_bytes(_table())
        report = Path(tmp) / "errors.csv"
        command = [TRUSTCTL, "licence", "convert", str(table), "--type", FOOD, "--issuer", issuer, "--source",
                   "基准测试档案", "--report", str(report), "--credential", str(home / "officers" / "officer-1.pem")]
        count = "SELECT count(*) FROM licence_conversion"
        started = time.monotonic()
        first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while _query(home, count) < ROWS // 2 and first.poll() is None:
            time.sleep(1)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        at_kill = _query(home, count)
        rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
        took = time.monotonic() - started
        converted = _query(home, count)
        numbers = _query(home, "SELECT count(DISTINCT licence_no) FROM licence_conversion")
        issued = _query(home, f"SELECT count(*) FROM licence WHERE type_code = '{FOOD}'")
        unrecorded = _query(home, "SELECT count(*) FROM licence l LEFT JOIN licence_conversion c "
                                  f"ON c.licence_id = l.licence_id WHERE l.type_code = '{FOOD}' AND c.licence_id IS NULL")
        reported = {int(row[0]) for row in list(csv.reader(io.StringIO(report.read_text("utf-8-sig"))))[1:]}
        bad = {n + 2 for n in range(ROWS) if n % BAD_EVERY == BAD_EVERY - 1}  # spreadsheet rows: the header is 1
        good = ROWS - len(bad)
        result = {"conversion_rows": ROWS, "conversion_bad_rows": len(bad), "conversion_killed_at": at_kill,
                  "conversion_licences": issued, "conversion_records": converted,
                  "conversion_distinct_numbers": numbers, "conversion_unrecorded_licences": unrecorded,
                  "conversion_bad_rows_reported": len(reported & bad), "conversion_rerun_exit": rerun.returncode,
                  "conversion_minutes": round(took / 60, 1), "conversion_rows_per_s": round(ROWS / took, 1)}
        ok = (issued == converted == numbers == good and unrecorded == 0 and reported == bad
              and rerun.returncode == 1 and 0 < at_kill < good)
        return {**result, "conversion_acceptance": "passed" if ok else "FAILED"}


if __name__ == "__main__":
    outcome = run()
    print(json.dumps(outcome, ensure_ascii=False))
    sys.exit(0 if outcome["conversion_acceptance"] == "passed" else 1)
