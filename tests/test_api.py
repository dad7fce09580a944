"""The HTTP foundation: probes, problem+json errors, body limit, security headers.

Flask's test client against real databases: an SQLite file in tmp_path, and the
PostgreSQL server of tests/conftest.py where it matters.
"""

import io
import logging
import socket

import pytest
from flask import request

from api.app import create_app
from hsm.kek import create_master_key_file
from trust import db
from trust.config import Settings
from trust.errors import InvalidInput, NotFound, TrustError, UnsupportedAlgorithm

LIMIT = 1024


def settings_for(tmp_path, url) -> Settings:
    return Settings(home=tmp_path, database_url=url, host="127.0.0.1", port=8000,
                    max_request_bytes=LIMIT, workers=1)


@pytest.fixture
def make_app(tmp_path):
    """create_app on a database URL, migrated or not; engines disposed afterwards."""
    engines = []

    def make(url, migrate=True):
        engine = db.make_engine(url)
        engines.append(engine)
        if migrate:
            db.upgrade(engine)
            create_master_key_file(tmp_path / "master.key")
        return create_app(settings_for(tmp_path, url), engine)

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def app(make_app, tmp_path):
    return make_app(f"sqlite:///{tmp_path / 'trust.db'}")


@pytest.fixture
def client(app):
    return app.test_client()


def assert_problem(response, status, code):
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert body["code"] == code
    for field in ("title", "title_zh", "detail", "detail_zh"):
        assert body[field], field
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def closed_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_on_a_migrated_database(make_app, db_url):
    response = make_app(db_url).test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ready"


def test_readyz_without_the_master_key(make_app, db_url, tmp_path):
    app = make_app(db_url)
    (tmp_path / "master.key").unlink()
    body = assert_problem(app.test_client().get("/readyz"), 503, "key_unavailable")
    assert "master key" in body["detail"] and "密钥库未就绪" in body["detail_zh"]


def test_readyz_on_an_unmigrated_database(make_app, tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'empty.db'}", migrate=False)
    body = assert_problem(app.test_client().get("/readyz"), 503, "storage_error")
    assert "数据库" in body["detail_zh"]
    assert "Database" in body["detail"]


def test_readyz_on_an_unreachable_postgresql(make_app):
    url = f"postgresql+psycopg://trust:secret@127.0.0.1:{closed_loopback_port()}/trust"
    app = make_app(url, migrate=False)
    body = assert_problem(app.test_client().get("/readyz"), 503, "storage_error")
    assert "secret" not in str(body)


def test_unknown_route_is_a_404_problem(client):
    body = assert_problem(client.get("/no/such/page"), 404, "not_found")
    assert body["title"] == "Not Found"


def test_wrong_method_is_a_405_problem_with_allow(client):
    response = client.delete("/healthz")
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_body_over_the_limit_is_a_413_problem(client):
    assert_problem(client.post("/healthz", data=b"x" * (LIMIT + 1)), 413, "request_too_large")
    # Whatever the route: the limit is checked before routing.
    assert_problem(client.post("/no/such/page", data=b"x" * (LIMIT + 1)), 413,
                   "request_too_large")


def post_streamed(client, path, body):
    """A chunked body: no Content-Length, the server (gunicorn) ends the stream itself."""
    return client.post(path, input_stream=io.BytesIO(body),
                       headers={"Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})


def test_streamed_body_over_the_limit_is_a_413_problem(client):
    assert_problem(post_streamed(client, "/healthz", b"x" * (LIMIT + 1)), 413,
                   "request_too_large")


def test_streamed_body_at_the_limit_reaches_the_view(app):
    app.add_url_rule("/echo-length", view_func=lambda: {"length": len(request.get_data())},
                     methods=["POST"])
    response = post_streamed(app.test_client(), "/echo-length", b"x" * LIMIT)
    assert response.get_json() == {"length": LIMIT}


def test_body_at_the_limit_passes(client):
    assert client.post("/healthz", data=b"x" * LIMIT).status_code == 405


def test_unexpected_exception_is_a_500_without_details(app, caplog):
    def explode():
        raise RuntimeError("secret-internal-detail")

    app.add_url_rule("/explode", view_func=explode)
    with caplog.at_level(logging.ERROR, logger="api.problems"):
        response = app.test_client().get("/explode")
    body = assert_problem(response, 500, "internal_error")
    text = response.get_data(as_text=True)
    for leak in ("secret-internal-detail", "RuntimeError", "Traceback", "explode", ".py"):
        assert leak not in text
    # The operator finds it in the log under the request id.
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert body["request_id"] in logged
    assert any("secret-internal-detail" in str(r.exc_info[1]) for r in caplog.records)


class BrandNew(InvalidInput):
    code = "brand_new"


@pytest.mark.parametrize("error, status", [
    (InvalidInput("bad key", "密钥无效"), 400),
    (UnsupportedAlgorithm("no such OID", "不支持的算法"), 400),
    (BrandNew("new kind of bad input", "新的输入错误"), 400),  # falls back to its parent
    (NotFound("no such seal", "印章不存在"), 404),
    (TrustError("something of ours", "我们的错误"), 500),
])
def test_trust_errors_map_to_statuses(app, error, status):
    def fail():
        raise error

    app.add_url_rule("/fail", view_func=fail)
    body = assert_problem(app.test_client().get("/fail"), status, error.code)
    assert (body["detail"], body["detail_zh"]) == (error.en, error.zh)


def test_security_headers(client):
    for response in (client.get("/healthz"), client.get("/no/such/page")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Request-ID"]


def test_chinese_is_sent_as_utf8_not_escaped(client):
    assert "未找到".encode() in client.get("/no/such/page").get_data()
