"""Liveness and readiness probes for load balancers and orchestrators."""

from flask import Blueprint, current_app

from trust import db
from trust.errors import StorageError

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    """200 while the process can answer at all; checks nothing else."""
    return {"status": "ok"}


@blueprint.get("/readyz")
def readyz():
    """200 when the database is reachable and migrated, else a 503 problem naming what is not."""
    try:
        db.check_ready(current_app.extensions["trust.engine"])
    except StorageError as error:
        raise StorageError(f"Database not ready: {error.en}", f"数据库未就绪：{error.zh}") from error
    return {"status": "ready", "checks": {"database": "ok"}}
