"""The service's Prometheus metrics (issue #20 item 4), in one place for every package.

Under `trustctl serve` each gunicorn worker records into files in ``PROMETHEUS_MULTIPROC_DIR``
(prometheus_client's multi-process mode), a directory of the instance's own that the serving
process makes before it forks; ``/metrics`` (api/metrics_http.py) adds them up. prometheus_client
chooses where a metric keeps its values when the metric is made, so the metrics are made
on first use, in the worker, after that variable is set; and prometheus_client is only
imported then. A command line process records into memory and nobody reads it.
"""

import os
import threading

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_lock = threading.Lock()
_made: dict | None = None


def _metrics() -> dict:
    global _made
    if _made is None:
        with _lock:
            if _made is None:
                from prometheus_client import Counter, Histogram
                _made = {
                    "requests": Counter("trust_http_requests", "HTTP requests answered, by route and status",
                                        ["method", "route", "status"]),
                    "latency": Histogram("trust_http_request_duration_seconds", "Time to answer a request, by route",
                                         ["method", "route"],
                                         buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)),
                    "signatures": Counter("trust_signatures", "Signatures made with keys in custody, by usage",
                                          ["usage"]),
                    "verifications": Counter("trust_verifications", "Verification reports given, by format and verdict",
                                             ["format", "status"]),
                }
    return _made


def request_answered(method: str, route: str, status: int, seconds: float) -> None:
    made = _metrics()
    made["requests"].labels(method, route, str(status)).inc()
    made["latency"].labels(method, route).observe(seconds)


def signed(usage: str, count: int = 1) -> None:
    _metrics()["signatures"].labels(usage).inc(count)


def verified(format: str, status: str) -> None:
    _metrics()["verifications"].labels(format, status).inc()


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None
