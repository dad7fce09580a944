"""Timing helpers and the `openssl speed` reference."""

import re
import shutil
import subprocess
import time
from collections.abc import Callable


def rate(operation: Callable[[], object], seconds: float) -> float:
    """Operations per second of ``operation`` over about ``seconds`` of wall time."""
    operation()  # warm caches (Z values, handles) outside the timed loop
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(16):
            operation()
        count += 16
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def openssl_speed(*args: str) -> str:
    exe = shutil.which("openssl")
    if exe is None:
        raise SystemExit("bench needs the openssl CLI as its reference (apt-get install openssl)")
    return subprocess.run([exe, "speed", *args], capture_output=True, text=True, check=True, timeout=300).stdout


def openssl_sm2(seconds: int) -> tuple[float, float]:
    """(sign/s, verify/s) from `openssl speed sm2`."""
    out = openssl_speed("-seconds", str(seconds), "sm2")
    match = re.search(r"SM2 \(CurveSM2\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", out)
    if match is None:
        raise SystemExit(f"could not read `openssl speed sm2` output:\n{out}")
    return float(match.group(1)), float(match.group(2))


def openssl_throughput(cipher_or_digest: str, block: int, seconds: int) -> float:
    """Bytes per second from `openssl speed -evp NAME -bytes BLOCK`."""
    out = openssl_speed("-seconds", str(seconds), "-bytes", str(block), "-evp", cipher_or_digest)
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0].lower() == cipher_or_digest.lower() and fields[-1].endswith("k"):
            return float(fields[-1][:-1]) * 1000
    raise SystemExit(f"could not read `openssl speed -evp {cipher_or_digest}` output:\n{out}")


def best_of(runs: int, measure: Callable[[], float]) -> float:
    return max(measure() for _ in range(runs))
