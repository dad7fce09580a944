"""`trustctl serve`: run the HTTP service under gunicorn."""

import atexit
import json
import logging
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime

import click
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from api import production
from api.app import create_app
from api.asgi import BufferedWSGI
from api.cli import exits
from hsm import checkpoints
from trust import events, metrics
from trust.config import LogFormat, Settings, load_settings

LOG_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object a line (TRUST_LOG_FORMAT=json): time, level, logger, process, message,
    the request id when the record belongs to a request, the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname, "logger": record.name, "pid": record.process,
                "message": record.getMessage()}
        request_id = getattr(record, "request_id", None)
        if request_id:
            line["request_id"] = request_id
        if record.exc_text:
            line["exception"] = record.exc_text
        elif record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class MaskedLogger(Logger):
    """gunicorn's logs with personal data masked in every line (trust.events.MaskingFilter);
    with ``json_lines``, each line a JSON object, an access line with the X-Request-ID the
    service answered with (api.app), so it joins the service's own lines for that request."""

    json_lines = False

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            log.addFilter(events.MaskingFilter())
        if self.json_lines:  # an access line is made whole in ``access``
            for handler in self.error_log.handlers:
                handler.setFormatter(JsonFormatter())

    def access(self, resp, req, environ, request_time) -> None:
        if not self.json_lines:
            return super().access(resp, req, environ, request_time)
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        self.access_log.info(json.dumps({
            "type": "access", "remote": atoms["h"], "method": atoms["m"], "path": atoms["U"],
            "query": atoms["q"], "status": int(atoms["s"]) if str(atoms["s"]).isdigit() else atoms["s"],
            "bytes": atoms["B"], "duration_ms": atoms["D"] / 1000,
            "request_id": atoms.get("{x-request-id}o"), "user_agent": atoms["a"]}, ensure_ascii=False))


class TrustServer(BaseApplication):
    """gunicorn started from code rather than from its own command line."""

    def __init__(self, settings: Settings, options: dict):
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        # gunicorn >= 25.1 opens a control socket at one per-user path that every instance
        # shares; we do not use gunicornc, so turn it off where the setting exists.
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)

    def load(self):
        # Called in each worker after the fork (no preload), so no database
        # connection is ever shared between processes.
        app = create_app(self.settings)
        # The serving processes sign the audit checkpoints that fall due (hsm/checkpoints.py).
        app.after_request(checkpoints.Checkpointer(app.extensions["trust.sessions"], app.extensions["trust.keystore"],
                                                   checkpoints.Policy.from_env()).after_request)
        return BufferedWSGI(app, max_body=self.settings.max_request_bytes)


def _metrics_of_dead_worker(_arbiter, worker) -> None:
    """A worker that ended keeps its counters, not its gauges (prometheus_client's rule)."""
    if metrics.multiprocess_dir():
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)


def _metrics_directory() -> None:
    """Each worker's metrics go to files in a directory of this instance's own (trust/metrics.py):
    new at each start, so counts begin at zero, and never shared with another instance on the
    same home; removed when the server stops."""
    directory = tempfile.mkdtemp(prefix="trust-metrics-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    os.environ[metrics.MULTIPROC_ENV] = directory


def gunicorn_options(host: str, port: int, workers: int) -> dict:
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # IPv6 in brackets
    url = f"http://{address}/"

    def announce(_arbiter) -> None:
        click.echo(f"信任服务已启动 / Trust service listening on {url}")
        click.echo(f"  存活检查 / liveness:  {url}healthz")
        click.echo(f"  就绪检查 / readiness: {url}readyz")
        click.echo(f"  统一身份认证 / sign-in (OIDC): {url}.well-known/openid-configuration  {url}login")
        click.echo(f"  电子印章 / seal API: {url}api/v1/seals   证书机构 / CA: {url}api/ca")

    return {
        "bind": address,
        "workers": workers,
        "worker_class": "api.asgi.Worker",  # slow clients cost a coroutine, not a worker
        "asgi_loop": "asyncio",
        "proc_name": "trustctl",
        "timeout": 30,           # a worker whose event loop is stuck longer than this is restarted
        "graceful_timeout": 10,  # time to finish requests on SIGTERM
        "accesslog": "-",        # stdout
        "errorlog": "-",         # stderr
        "logger_class": MaskedLogger,  # no ID or phone number in any line
        # gunicorn's defaults, spelled out: bounds on what one request line and header
        # block may cost before the app sees it.
        "limit_request_line": 4094,
        "limit_request_fields": 100,
        "limit_request_field_size": 8190,
        "when_ready": announce,
        "child_exit": _metrics_of_dead_worker,
    }


@click.command(cls=exits.Command)
@click.option("--host", help="Address to listen on (default TRUST_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default TRUST_PORT, 8000).")
@click.option("--workers", type=click.IntRange(1), help="Worker processes (default TRUST_WORKERS).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """运行信任服务 / Run the trust service (gunicorn)."""
    # The service's own log records (api.problems: failed requests) go beside gunicorn's.
    settings = load_settings()
    logging.basicConfig(format=LOG_FORMAT)  # warnings and errors, as by default
    for handler in logging.getLogger().handlers:
        handler.addFilter(events.MaskingFilter())
        if settings.log_format is LogFormat.JSON:
            handler.setFormatter(JsonFormatter())
    MaskedLogger.json_lines = settings.log_format is LogFormat.JSON  # the forked workers inherit it
    checkpoints.Policy.from_env()  # a bad setting is refused here, not in every worker
    refused = production.refusals(settings, dict(os.environ))
    if refused:
        click.echo("生产模式拒绝启动 / Production mode refuses to start (TRUST_MODE=production):", err=True)
        for refusal in refused:
            click.echo(f"  {refusal.setting}: {refusal.zh}\n    {refusal.en}", err=True)
        sys.exit(exits.FAILED)
    _metrics_directory()
    options = gunicorn_options(host or settings.host, port or settings.port,
                               workers or settings.workers)
    TrustServer(settings, options).run()
