"""Every error the HTTP layer returns, as RFC 9457 ``application/problem+json``.

The one shape, for every status::

    {
      "type": "about:blank",
      "title": "Not Found",            # the HTTP status phrase, English
      "title_zh": "未找到",              # the same, Chinese
      "status": 404,
      "detail": "No seal with this id.",   # what went wrong, English
      "detail_zh": "没有此编号的印章。",      # the same, Chinese
      "code": "not_found",             # stable machine-readable code (trust.errors codes)
      "request_id": "9f1c…",           # also sent as the X-Request-ID header
      "errors": [{"field", "zh", "en"}]   # only for a request with wrong fields (licence issuance)
    }

``type`` stays ``about:blank``, so ``title`` is the status phrase (RFC 9457 §4.2.1) and
``code`` tells problems apart. This module is the one place that maps
``trust.errors`` codes to HTTP statuses. Unexpected exceptions become a generic 500:
the traceback goes to the server log under the request id, never into the body.
"""

import logging
import uuid
from http import HTTPStatus

from flask import Flask, Response, g, json
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from trust.errors import TrustError

PROBLEM_JSON = "application/problem+json"

log = logging.getLogger(__name__)
RETRY_AFTER_S = 2

# trust.errors code -> HTTP status. A subclass without an entry takes its parent's status
# (see status_for); a TrustError with no entry anywhere up its classes is a 500.
STATUS_BY_CODE = {
    "invalid_input": 400,
    "permission_denied": 403,
    "unauthenticated": 401,
    "invalid_token": 401,
    "request_closed": 409,
    "idempotency_conflict": 409,
    "already_revoked": 409,
    "usage_not_permitted": 403,
    "key_not_active": 409,
    "unsupported_algorithm": 400,
    "not_found": 404,
    "invalid_signature": 422,
    "decryption_failed": 422,
    "key_unavailable": 503,
    "tsa_unavailable": 503,
    "storage_error": 503,
    "audit_chain_broken": 500,
    "internal_error": 500,
}

# HTTP status -> (code, title_zh, detail, detail_zh) for errors raised by Flask/Werkzeug.
HTTP_ERRORS = {
    400: ("bad_request", "请求无效", "The request is malformed.", "请求格式不正确。"),
    401: ("unauthorized", "未认证", "Authentication is required.", "需要先登录或提供凭据。"),
    403: ("forbidden", "禁止访问", "You are not allowed to do this.", "无权执行此操作。"),
    404: ("not_found", "未找到", "There is nothing at this address.", "请求的地址不存在。"),
    405: ("method_not_allowed", "方法不允许",
          "This address does not accept this method.", "该地址不支持此请求方法。"),
    413: ("request_too_large", "请求体过大",
          "The request body is larger than allowed.", "请求体超过了允许的大小。"),
    415: ("unsupported_media_type", "媒体类型不支持",
          "This content type is not supported.", "不支持此请求内容类型。"),
    422: ("unprocessable", "无法处理",
          "The request content cannot be processed.", "请求内容无法处理。"),
    429: ("too_many_requests", "请求过多",
          "Too many requests; try again later.", "请求过于频繁，请稍后再试。"),
    500: ("internal_error", "内部错误", "Internal error; give the request id to the operator.",
          "服务内部出错，请将请求编号提供给管理员。"),
    503: ("unavailable", "服务不可用",
          "The service is unavailable for now.", "服务暂时不可用，请稍后再试。"),
}


def request_id() -> str:
    """The id of the current request, made on first use."""
    if "request_id" not in g:
        g.request_id = uuid.uuid4().hex
    return g.request_id


def status_for(error: TrustError) -> int:
    for cls in type(error).__mro__:
        status = STATUS_BY_CODE.get(getattr(cls, "code", ""))
        if status is not None:
            return status
    return 500


def problem(status: int, code: str, detail: str, detail_zh: str,
            headers: list[tuple[str, str]] | None = None, errors: list[dict] | None = None) -> Response:
    phrase = HTTPStatus(status).phrase
    body = {
        "type": "about:blank",
        "title": phrase,
        "title_zh": HTTP_ERRORS[status][1] if status in HTTP_ERRORS else phrase,
        "status": status,
        "detail": detail,
        "detail_zh": detail_zh,
        "code": code,
        "request_id": request_id(),
    }
    if errors:
        body["errors"] = errors   # each wrong field of a request: {"field", "zh", "en"}
    if status == 503:  # unavailable for now: say when to come back (RFC 9110 §10.2.3)
        headers = [*(headers or []), ("Retry-After", str(RETRY_AFTER_S))]
    return Response(json.dumps(body), status=status, headers=headers, mimetype=PROBLEM_JSON)


def from_trust_error(error: TrustError) -> Response:
    status = status_for(error)
    if status == 500:
        log.error("request %s failed: %s", request_id(), error.code, exc_info=error,
                  extra={"request_id": request_id()})
    elif status > 500:  # unavailable for now (database, key device): no traceback needed
        log.warning("request %s: %s: %s", request_id(), error.code, error.en, extra={"request_id": request_id()})
    headers = None
    if status == 401:  # RFC 6750 §3: tell the client how to authenticate
        headers = [("WWW-Authenticate", f'Bearer error="{error.code}"' if error.code == "invalid_token" else "Bearer")]
    elif error.code == "permission_denied" and "insufficient_scope" in error.en:
        headers = [("WWW-Authenticate", 'Bearer error="insufficient_scope"')]
    errors = [e.to_dict() for e in getattr(error, "errors", ())]
    return problem(status, error.code, error.en, error.zh, headers, errors)


def from_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    code, _, detail, detail_zh = HTTP_ERRORS.get(
        status, (f"http_{status}", None, error.description or "", "请求未能处理。"))
    # Keep headers such as Allow (405) and WWW-Authenticate (401); the body is ours.
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    return problem(status, code, detail, detail_zh, headers)


def from_database_error(error: DBAPIError) -> Response:
    """A connection lost or refused (the database restarting, a standby being promoted) is
    503 with Retry-After: the request did nothing, and the next one finds the new primary.
    Anything else the database says is a fault of ours (500)."""
    if not (isinstance(error, (OperationalError, InterfaceError)) or error.connection_invalidated):
        return from_unexpected(error)
    log.warning("request %s: the database is unreachable: %s", request_id(), type(error.orig).__name__,
                extra={"request_id": request_id()})
    return problem(503, "storage_error", "the database cannot be reached just now; try again shortly",
                   "暂时无法连接数据库，请稍后重试")


def from_unexpected(error: Exception) -> Response:
    log.error("request %s failed unexpectedly", request_id(), exc_info=error, extra={"request_id": request_id()})
    code, _, detail, detail_zh = HTTP_ERRORS[500]
    return problem(500, code, detail, detail_zh)


def register(app: Flask) -> None:
    app.register_error_handler(TrustError, from_trust_error)
    app.register_error_handler(HTTPException, from_http_exception)
    app.register_error_handler(DBAPIError, from_database_error)
    app.register_error_handler(Exception, from_unexpected)
