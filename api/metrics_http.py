"""``GET /metrics``: the Prometheus text format (issue #20 item 4), for the monitoring
system, not for the public: answered to loopback clients and to the addresses in
``TRUST_METRICS_ALLOW``; anyone else gets 404, as for a page that does not exist.

What is counted as it happens (trust/metrics.py, added up over the workers): requests by
route and status, their latency, signatures by key usage, verification verdicts. What is
read from the database when scraped: approvals waiting, the age of the last signed audit
checkpoint and the records it does not cover yet, whether the database and key store are
ready.
"""

import ipaddress
import math
import time

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy import func, select

from hsm import checkpoints
from hsm.dual_control import PENDING, approval_requests
from trust import audit, metrics
from trust.clock import utc_now
from trust.errors import NotFound, TrustError

blueprint = Blueprint("metrics", __name__)


def start_timer() -> None:
    g.metrics_started = time.perf_counter()


def record_request(response):
    started = g.pop("metrics_started", None)
    if started is not None:
        route = request.url_rule.rule if request.url_rule is not None else "(no route)"
        metrics.request_answered(request.method, route, response.status_code, time.perf_counter() - started)
    return response


def report_response(report) -> Response:
    """A verification report as JSON, its verdict counted."""
    metrics.verified(report.format, report.status.value)
    return jsonify(report.to_dict())


def _allowed(address: str | None) -> bool:
    try:
        client = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    allowed = current_app.extensions["trust.settings"].metrics_allow
    return client.is_loopback or any(client in network for network in allowed)


@blueprint.get("/metrics")
def scrape():
    if not _allowed(request.remote_addr):
        raise NotFound("not found", "未找到")
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
    if metrics.multiprocess_dir():
        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)
    else:
        counted = REGISTRY
    state = CollectorRegistry()
    state.register(_State())
    return Response(generate_latest(counted) + generate_latest(state), mimetype=CONTENT_TYPE_LATEST)


class _State:
    """Gauges read at scrape time, in the scraping worker."""

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily
        database = keystore = 1.0
        pending = age = unsigned = math.nan
        try:
            with current_app.extensions["trust.sessions"]() as session:
                pending = session.scalar(select(func.count()).select_from(approval_requests).where(
                    approval_requests.c.status == PENDING,
                    approval_requests.c.expires_at > utc_now()))
                last = checkpoints.latest(session)
                head = audit.head(session).seq
                if last is not None:
                    age = (utc_now() - last.at).total_seconds()
                unsigned = head - (last.seq if last is not None else 0)
        except Exception:
            database = 0.0
        try:
            current_app.extensions["trust.keystore"].check_ready()
        except TrustError:
            keystore = 0.0
        yield GaugeMetricFamily("trust_database_ready", "1 when the database answers", value=database)
        yield GaugeMetricFamily("trust_keystore_ready", "1 when the key store can be used", value=keystore)
        yield GaugeMetricFamily("trust_approvals_pending", "Dual-control requests waiting for approval",
                                value=pending)
        yield GaugeMetricFamily("trust_audit_checkpoint_age_seconds",
                                "Seconds since the last signed audit checkpoint (NaN: none yet)", value=age)
        yield GaugeMetricFamily("trust_audit_records_unsigned",
                                "Audit records after the last signed checkpoint", value=unsigned)
