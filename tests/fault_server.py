"""An OpenAI-compatible chat server on 127.0.0.1 whose replies are scripted per request.

    with FaultServer() as server:
        server.push(rate_limited(retry_after=1), server_error(503), ok('{"pairs": []}'))
        ... grounded run DOCS --model openai/fake --api-base {server.url} ...
        assert len(server.requests) == 3

Each request to `/v1/chat/completions` takes the next scripted `Reply`; when the script is
empty, `default` answers (a `Reply`, or a callable `body -> Reply`). Every request is recorded
with its path, headers and JSON body; `sent` holds the bodies of those whose reply was sent in
full. Replies cover the faults real servers produce: 429 with
and without Retry-After, 5xx, 401, 404 for an unknown model, slow replies, a body that is not
JSON, chatty or cut-off content, and an empty `choices` list.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Body = dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP reply: status, JSON body (or raw bytes), headers, and a delay first."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None


def completion(content: str, *, finish_reason: str = "stop", model: str = "fake") -> Body:
    """A chat.completion body with one choice."""
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def _error(status: int, message: str, *, kind: str, code: str | None = None, **kw: Any) -> Reply:
    return Reply(status, {"error": {"message": message, "type": kind, "code": code}}, **kw)


def ok(content: str, *, delay: float = 0.0) -> Reply:
    return Reply(200, completion(content), delay=delay)


def chatty(payload: Body) -> Reply:
    """Valid JSON wrapped in a preamble and a code fence, as small models reply."""
    return ok(
        "Sure! Here is the JSON you asked for:\n```json\n" + json.dumps(payload) + "\n```\nEnjoy!"
    )


def truncated(payload: Body) -> Reply:
    """Content cut off mid-JSON by max_tokens (finish_reason=length)."""
    text = json.dumps(payload)
    return Reply(200, completion(text[: len(text) // 2], finish_reason="length"))


def rate_limited(*, retry_after: float | None = None) -> Reply:
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    return _error(429, "Rate limit reached, slow down", kind="rate_limit_error", headers=headers)


def server_error(status: int = 500) -> Reply:
    return _error(status, f"upstream failure {status}", kind="server_error")


def unauthorized() -> Reply:
    return _error(
        401,
        "Incorrect API key provided: sk-bad",
        kind="invalid_request_error",
        code="invalid_api_key",
    )


def unknown_model(name: str = "fake") -> Reply:
    return _error(
        404,
        f"The model `{name}` does not exist or you do not have access to it.",
        kind="invalid_request_error",
        code="model_not_found",
    )


def bad_request(message: str = "Invalid value for 'response_format'") -> Reply:
    return _error(400, message, kind="invalid_request_error")


def slow(content: str, seconds: float) -> Reply:
    return ok(content, delay=seconds)


def malformed() -> Reply:
    """A 200 whose body is not JSON (a proxy's HTML page, a cut connection)."""
    return Reply(200, raw=b'{"id": "chatcmpl-x", "choices": [{"index": 0, "mess')


def empty_choices() -> Reply:
    return Reply(200, {**completion(""), "choices": []})


class FaultServer:
    """A threaded HTTP server on an ephemeral loopback port; `url` is its OpenAI base URL."""

    def __init__(
        self,
        script: Iterable[Reply] = (),
        *,
        default: Reply | Callable[[Body], Reply] | None = None,
    ) -> None:
        self.script: deque[Reply] = deque(script)
        self.default = default
        self.requests: list[dict[str, Any]] = []
        self.sent: list[Body] = []  # bodies of the requests whose reply was sent in full
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next(self, body: Body) -> Reply:
        with self._lock:
            if self.script:
                return self.script.popleft()
        if self.default is None:
            return server_error(500)
        return self.default(body) if callable(self.default) else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
                pass  # keep test output clean

            def do_GET(self) -> None:  # /v1/models, health probes
                self._send(
                    Reply(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
                )

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                with server._lock:
                    server.requests.append(
                        {
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": body,
                            "time": time.monotonic(),
                        }
                    )
                if self._send(server._next(body)):
                    with server._lock:
                        server.sent.append(body)

            def _send(self, reply: Reply) -> bool:
                if reply.delay:
                    time.sleep(reply.delay)
                data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return False  # the client gave up (its timeout): nothing to answer
                return True

        return Handler
