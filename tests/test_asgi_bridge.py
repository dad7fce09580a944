"""The ASGI bridge in front of the WSGI application (api/asgi.py), driven directly: the
body is buffered within its time and size limits before the application is called, and the
WSGI environ is what PEP 3333 says."""

import asyncio
import json

from api.asgi import BufferedWSGI, _environ

SCOPE = {"type": "http", "method": "POST", "path": "/v/证照", "query_string": b"a=1&b=%C2%B2", "root_path": "",
         "scheme": "http", "http_version": "1.1", "server": ("127.0.0.1", 8000), "client": ("10.0.0.7", 5555),
         "headers": [(b"host", b"x"), (b"content-type", b"application/json"), (b"transfer-encoding", b"chunked"),
                     (b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"x-many", b"1"), (b"x-many", b"2")]}


def _app(calls):
    def app(environ, start_response):
        calls.append(environ)
        body = environ["wsgi.input"].read()
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-Seen", str(len(body)))])
        return [b"got ", body]
    return app


def _drive(bridge, messages, scope=SCOPE, delay=0.0):
    sent = []

    async def receive():
        if delay:
            await asyncio.sleep(delay)
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)
    asyncio.run(bridge(scope, receive, send))
    return sent


def test_a_chunked_body_is_whole_before_the_application_sees_it():
    calls = []
    sent = _drive(BufferedWSGI(_app(calls), max_body=100), [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"cd", "more_body": False}])
    assert sent[0]["status"] == 201 and (b"x-seen", b"4") in sent[0]["headers"] and sent[1]["body"] == b"got abcd"
    (environ,) = calls
    assert environ["CONTENT_LENGTH"] == "4" and "HTTP_TRANSFER_ENCODING" not in environ
    assert environ["PATH_INFO"] == "/v/证照".encode().decode("latin-1")  # PEP 3333: bytes as latin-1
    assert environ["QUERY_STRING"] == "a=1&b=%C2%B2" and environ["REMOTE_ADDR"] == "10.0.0.7"
    assert environ["HTTP_COOKIE"] == "a=1; b=2" and environ["HTTP_X_MANY"] == "1,2"
    assert environ["CONTENT_TYPE"] == "application/json" and "HTTP_CONTENT_TYPE" not in environ


def test_too_large_declared_or_sent_is_413_and_the_application_is_never_called():
    calls = []
    declared = {**SCOPE, "headers": [(b"content-length", b"1000")]}
    sent = _drive(BufferedWSGI(_app(calls), max_body=100), [], scope=declared)
    assert sent[0]["status"] == 413
    sent = _drive(BufferedWSGI(_app(calls), max_body=3), [{"type": "http.request", "body": b"abcd"}])
    body = json.loads(sent[1]["body"])
    assert sent[0]["status"] == 413 and body["code"] == "request_too_large" and body["detail_zh"]
    assert (b"content-type", b"application/problem+json") in sent[0]["headers"]
    assert calls == []


def test_a_body_that_does_not_arrive_in_time_is_408():
    calls = []
    sent = _drive(BufferedWSGI(_app(calls), max_body=100, read_timeout=0.2),
                  [{"type": "http.request", "body": b"a", "more_body": True}] * 10, delay=0.1)
    body = json.loads(sent[1]["body"])
    assert sent[0]["status"] == 408 and body["code"] == "request_timeout" and "0.2 seconds" in body["detail"]
    assert calls == []


def test_a_client_that_goes_away_is_left_alone():
    calls = []
    assert _drive(BufferedWSGI(_app(calls), max_body=100), [{"type": "http.disconnect"}]) == [] and calls == []


def test_environ_without_a_client_address():
    environ = _environ({**SCOPE, "client": None, "server": None, "headers": []}, b"")
    assert environ["REMOTE_ADDR"] == "" and environ["SERVER_NAME"] == "127.0.0.1"
