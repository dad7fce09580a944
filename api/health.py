"""Liveness and readiness probes for load balancers and orchestrators."""

from flask import Blueprint, current_app

from trust import db
from trust.errors import KeyUnavailable, StorageError

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    """200 while the process can answer at all; checks nothing else."""
    return {"status": "ok"}


@blueprint.get("/readyz")
def readyz():
    """200 when the database is reachable and migrated and the key store can be used, else a
    503 problem naming what is not. Verification keeps working while keys are unavailable,
    but a service that cannot sign is not ready."""
    try:
        db.check_ready(current_app.extensions["trust.engine"])
    except StorageError as error:
        raise StorageError(f"Database not ready: {error.en}", f"数据库未就绪：{error.zh}") from error
    try:
        current_app.extensions["trust.keystore"].check_ready()
    except KeyUnavailable as error:
        raise KeyUnavailable(f"Key store not ready: {error.en}", f"密钥库未就绪：{error.zh}") from error
    return {"status": "ready", "checks": {"database": "ok", "keystore": "ok"}}
