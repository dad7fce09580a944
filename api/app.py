"""The Flask application factory.

Views reach the service's dependencies through ``current_app.extensions``:
``"trust.settings"`` (:class:`trust.config.Settings`), ``"trust.engine"`` (the SQLAlchemy
engine), ``"trust.sessions"`` (a sessionmaker bound to it), ``"trust.group_commit"``
(:class:`trust.db.GroupCommit` on those sessions) and ``"trust.keystore"`` (hsm's KeyStore).
"""

from typing import cast

from flask import Flask, Response, current_app, request
from flask.json.provider import DefaultJSONProvider
from sqlalchemy import Engine
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from api import (
    audit_api,
    ca_api,
    ca_http,
    health,
    licence_api,
    licence_pages,
    metrics_http,
    oidc_http,
    openapi,
    problems,
    seal_api,
)
from hsm.keystore import KeyStore, open_keystore
from trust import db
from trust.config import Settings, load_settings

# Nothing may load or frame anything; pages that need more set their own policy.
DEFAULT_CSP = "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"


def create_app(settings: Settings | None = None, engine: Engine | None = None,
               keystore: KeyStore | None = None) -> Flask:
    settings = settings or load_settings()
    engine = engine or db.make_engine(settings.database_url)
    sessions = db.session_factory(engine)
    # Opens nothing until first use, so it is safe to build before gunicorn forks.
    keystore = keystore or open_keystore(settings, sessions)

    app = Flask(__name__, static_folder=None)  # blueprints serve their own static files
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    provider = cast(DefaultJSONProvider, app.json)
    provider.ensure_ascii = False  # Chinese stays readable in JSON bodies
    provider.sort_keys = False
    app.extensions["trust.settings"] = settings
    app.extensions["trust.engine"] = engine
    app.extensions["trust.sessions"] = sessions
    app.extensions["trust.group_commit"] = db.GroupCommit(sessions)
    app.extensions["trust.keystore"] = keystore

    app.before_request(metrics_http.start_timer)
    app.before_request(reject_oversized_body)
    app.after_request(add_standard_headers)
    app.after_request(metrics_http.record_request)
    problems.register(app)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(metrics_http.blueprint)
    app.register_blueprint(ca_http.blueprint)
    app.register_blueprint(ca_api.blueprint)
    app.register_blueprint(oidc_http.blueprint)
    app.register_blueprint(seal_api.blueprint)
    app.register_blueprint(licence_api.blueprint)
    app.register_blueprint(licence_pages.blueprint)
    app.register_blueprint(audit_api.blueprint)
    app.register_blueprint(openapi.blueprint)
    if settings.proxy_hops:
        # The client address (login throttling, audit) and scheme as the trusted proxies saw
        # them; the host stays ours (TRUST_PUBLIC_URL), whatever X-Forwarded-Host says.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]  # Flask's documented way to add a middleware
            app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops, x_host=0)
    return app


def reject_oversized_body() -> None:
    """413 before any view runs, whether the body is declared or streamed (chunked).

    A streamed body is read here, through Werkzeug's stream limited to MAX_CONTENT_LENGTH,
    so no request makes the server read more than the limit (plus one byte).
    """
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    length = request.content_length
    if length is not None and length > limit:
        raise RequestEntityTooLarge()
    if length is None and "wsgi.input_terminated" in request.environ:
        body = request.get_data(cache=True)
        # Werkzeug stops a streamed body at the limit without complaint; one more byte
        # in the raw stream means the body was longer.
        if len(body) >= limit and request.environ["wsgi.input"].read(1):
            raise RequestEntityTooLarge()


def add_standard_headers(response: Response) -> Response:
    headers = response.headers
    headers["X-Request-ID"] = problems.request_id()
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
    if response.is_json:
        headers.setdefault("Cache-Control", "no-store")
    return response
