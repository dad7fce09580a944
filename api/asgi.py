"""The service as an ASGI application for gunicorn's asyncio worker: slow clients cost a
coroutine, never a worker.

The worker (``Worker``) is gunicorn's ASGI worker with one addition: a connection must
complete its first request's headers within ``HEADER_TIMEOUT_S`` or it is answered 408
and closed (gunicorn's own keep-alive timer already bounds the wait for later requests).

The Flask application stays WSGI. This bridge reads each request's body on the event loop,
within ``READ_TIMEOUT_S`` seconds and ``max_body`` bytes, and only then hands the whole
request to the WSGI application in one of the worker's ``APP_THREADS`` application threads;
so a client that sends its headers or body a byte a second holds a socket, not the service
(issue 23: three such clients used to take both sync workers down). A body that does not
arrive in time is answered 408, one too large 413, both as problem+json, without the
application being called.

Why several application threads: an asyncio worker accepts connections while its
application is busy (a sync worker does not), so one worker can be handed more requests
than the other; with four threads each worker works through its share at once, mostly
waiting on SQLite's fsync or in C (SM2, SM3, ECDSA) where the GIL is released. Measured
with `make bench` against sync workers in the same session: client-credentials tokens
178 against 176 /s, introspection 424 against 374 /s, seal batches 0.90 against 0.79 of
raw SM2 on two cores; with one thread tokens fell to 0.6 of the sync workers' rate.
"""

import asyncio
import io
import json
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi

HEADER_TIMEOUT_S = 10.0   # a new connection's request line and headers
READ_TIMEOUT_S = 15.0     # the whole body, from the end of the headers
APP_THREADS = 4


def _problem(status: int, code: str, title: str, title_zh: str, detail: str, detail_zh: str) -> tuple:
    request_id = uuid.uuid4().hex
    body = json.dumps({"type": "about:blank", "title": title, "title_zh": title_zh, "status": status,
                       "detail": detail, "detail_zh": detail_zh, "code": code, "request_id": request_id},
                      ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode()),
               (b"x-request-id", request_id.encode()), (b"connection", b"close")]
    return status, headers, body


def too_slow(timeout: float, what: str = "body", what_zh: str = "请求体") -> tuple:
    return _problem(408, "request_timeout", "Request Timeout", "请求超时",
                    f"The request {what} did not arrive within {timeout:g} seconds.",
                    f"{what_zh}未在 {timeout:g} 秒内送达。")


def too_large(limit: int) -> tuple:
    return _problem(413, "request_too_large", "Content Too Large", "请求体过大",
                    "The request body is larger than allowed.", f"请求体超过了允许的大小（{limit} 字节）。")


class BufferedWSGI:
    """An ASGI application that buffers each request, then runs ``wsgi_app`` on it."""

    def __init__(self, wsgi_app, *, max_body: int, read_timeout: float = READ_TIMEOUT_S):
        self.wsgi_app = wsgi_app
        self.max_body = max_body
        self.read_timeout = read_timeout
        self.executor = ThreadPoolExecutor(max_workers=APP_THREADS, thread_name_prefix="wsgi")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _send(send, *too_large(self.max_body))
            return
        # Not asyncio.wait_for: it answers only once the cancelled read has ended, and a read
        # cancelled inside the server's receive() may not end until the client goes (seen: a
        # body trickled a byte a second kept its connection past the deadline). The 408 is sent
        # at the deadline whatever the read does.
        reading = asyncio.ensure_future(self._body(receive))
        done, _ = await asyncio.wait({reading}, timeout=self.read_timeout)
        if not done:
            reading.cancel()
            reading.add_done_callback(lambda task: task.cancelled() or task.exception())  # nothing unretrieved
            await _send(send, *too_slow(self.read_timeout))
            return
        try:
            body = reading.result()
        except _Disconnected:
            return
        if body is None:
            await _send(send, *too_large(self.max_body))
            return
        loop = asyncio.get_running_loop()
        status, headers, content = await loop.run_in_executor(self.executor, self._run, _environ(scope, body))
        await _send(send, status, headers, content)

    async def _body(self, receive) -> bytes | None:
        """The whole body, or None once it passes max_body."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def _run(self, environ: dict) -> tuple:
        """Call the WSGI application (in the application thread) and collect its answer."""
        started = {}

        def start_response(status, headers, exc_info=None):
            started["status"] = int(status.split(" ", 1)[0])
            started["headers"] = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
            return lambda data: None  # the write() callable: Flask never uses it

        result = self.wsgi_app(environ, start_response)
        try:
            content = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        return started["status"], started["headers"], content

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.executor.shutdown(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return


class _Disconnected(Exception):
    pass


def _header(scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def _environ(scope, body: bytes) -> dict:
    """The WSGI environ (PEP 3333) of a buffered request: the body is complete, so it has a
    Content-Length whatever framing the client used."""
    server = scope.get("server") or ("127.0.0.1", 80)
    client = scope.get("client") or ("", 0)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode("utf-8").decode("latin-1"),
        "PATH_INFO": scope["path"].encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]), "SERVER_PORT": str(server[1]),
        "REMOTE_ADDR": str(client[0]), "REMOTE_PORT": str(client[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0), "wsgi.url_scheme": scope.get("scheme", "http"), "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }
    for key, value in scope["headers"]:
        name = key.decode("latin-1").upper().replace("-", "_")
        if name in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
            continue
        text = value.decode("latin-1")
        if name == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = text
            continue
        name = "HTTP_" + name
        joiner = "; " if name == "HTTP_COOKIE" else ","
        environ[name] = f"{environ[name]}{joiner}{text}" if name in environ else text
    return environ


async def _send(send, status: int, headers: list, content: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


# Refusals gunicorn makes before the application sees a request: (code, title, title_zh, detail, detail_zh).
FRAMING_ERRORS = {
    400: ("bad_request", "Bad Request", "请求无效", "The request is malformed.", "请求格式不正确。"),
    414: ("uri_too_long", "URI Too Long", "地址过长", "The request URI is longer than allowed.", "请求地址超过了允许的长度。"),
    431: ("header_fields_too_large", "Request Header Fields Too Large", "请求头过大",
          "The request's header fields are larger than allowed.", "请求头超过了允许的大小。"),
    426: ("upgrade_required", "Upgrade Required", "需要升级协议", "This request needs another protocol.",
          "此请求需要使用其他协议。"),
    500: ("internal_error", "Internal Server Error", "内部错误", "Internal error; give the request id to the operator.",
          "服务内部出错，请将请求编号提供给管理员。"),
    501: ("not_implemented", "Not Implemented", "不支持", "The request uses something this server does not "
          "implement.", "请求使用了本服务器不支持的功能。"),
}


class _Protocol(ASGIProtocol):
    """gunicorn's HTTP/1 protocol with a deadline on a connection's first request headers,
    and its own refusals written as problem+json."""

    _header_timer = None

    def connection_made(self, transport):
        super().connection_made(transport)
        self._header_timer = self.worker.loop.call_later(HEADER_TIMEOUT_S, self._headers_too_slow)

    def _on_headers_complete(self):
        self._stop_header_timer()
        return super()._on_headers_complete()

    def connection_lost(self, exc):
        self._stop_header_timer()
        return super().connection_lost(exc)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._current_request is not None or self._closed or self.transport is None:
            return
        self._write_problem(too_slow(HEADER_TIMEOUT_S, "headers", "请求头"))
        self._close_transport()
        if self._request_ready is not None:
            self._request_ready.set()  # wake the connection's loop so that it ends

    def _send_error_response(self, status, message, extra_headers=()):
        """gunicorn's own refusals (a malformed request line, a URI or header block too long)
        as problem+json like every other answer; its message, which may quote the request,
        is left out."""
        code, title, title_zh, detail, detail_zh = FRAMING_ERRORS.get(status, FRAMING_ERRORS[400])
        status_, headers, body = _problem(status, code, title, title_zh, detail, detail_zh)
        extra = [(name.lower().encode("latin-1"), str(value).encode("latin-1")) for name, value in extra_headers]
        self._write_problem((status_, headers + extra, body))

    def _write_problem(self, problem: tuple) -> None:
        status, headers, body = problem
        head = "".join(f"{k.decode('latin-1')}: {v.decode('latin-1')}\r\n" for k, v in headers)
        reason = FRAMING_ERRORS.get(status, (None, "Request Timeout" if status == 408 else "Error"))[1]
        self._safe_write(f"HTTP/1.1 {status} {reason}\r\n{head}\r\n".encode("latin-1") + body)


class Worker(gasgi.ASGIWorker):
    """gunicorn's asyncio worker, serving each connection with ``_Protocol``."""

    def init_process(self):
        gasgi.ASGIProtocol = _Protocol  # the worker makes each connection's protocol by this name
        super().init_process()
