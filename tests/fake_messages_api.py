"""A fake Anthropic Messages API on 127.0.0.1, so tests drive the real SDK without a key or a
network.

It answers `POST /v1/messages` from a script, in order: scripted messages (real response format),
HTTP errors in the API's error format (429 with retry-after, 529 overloaded, 500, 401, ...),
dropped connections, or a callable that builds the answer from the request. Every request body
and its headers are recorded. Each answer may wait first (latency), and requests are served
concurrently (one thread each), so runner tests can check that episodes overlap.

Like the real API it rejects (400 invalid_request_error) conversations that break the rules an
agent loop must keep: a tool_use without a tool_result in the next user turn, a tool_result
without its tool_use, tool_result blocks after other content, empty turns, more than four
cache_control breakpoints. Pass `validate=False` to switch that off.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_USAGE = {
    "input_tokens": 100,
    "output_tokens": 20,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}


@dataclass
class ScriptedReply:
    """A successful answer: a (partial) message dict; missing fields get real-looking defaults
    (id, type, role, model from the request, stop_reason from the content, usage)."""

    message: dict[str, Any]
    latency: float = 0.0


@dataclass
class ScriptedError:
    """An HTTP error with the API's JSON error body."""

    status: int
    error_type: str = "api_error"
    message: str = "Internal server error"
    headers: dict[str, str] = field(default_factory=dict)
    latency: float = 0.0


@dataclass
class Disconnect:
    """Close the connection without answering (the client sees a connection error)."""

    latency: float = 0.0


Responder = Callable[[dict[str, Any]], "ScriptedReply | ScriptedError | Disconnect | dict"]
ScriptItem = ScriptedReply | ScriptedError | Disconnect | dict[str, Any] | Responder


# Builders for scripts ------------------------------------------------------------------------


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


_tool_ids = itertools.count(1)


def tool_use(name: str, input: Any, id: str | None = None) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": id or f"toolu_fake_{next(_tool_ids):04d}",
        "name": name,
        "input": input,
    }


def message(
    *content: dict[str, Any] | str,
    stop_reason: str | None = None,
    usage: dict[str, int] | None = None,
    latency: float = 0.0,
) -> ScriptedReply:
    """A scripted assistant message; strings become text blocks."""
    blocks = [text(block) if isinstance(block, str) else block for block in content]
    body: dict[str, Any] = {"content": blocks}
    if stop_reason is not None:
        body["stop_reason"] = stop_reason
    if usage is not None:
        body["usage"] = usage
    return ScriptedReply(body, latency)


def rate_limited(retry_after: float | None = 0, latency: float = 0.0) -> ScriptedError:
    headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
    return ScriptedError(429, "rate_limit_error", "Rate limited", headers, latency)


def overloaded(latency: float = 0.0) -> ScriptedError:
    return ScriptedError(529, "overloaded_error", "Overloaded", latency=latency)


def server_error(latency: float = 0.0) -> ScriptedError:
    return ScriptedError(500, "api_error", "Internal server error", latency=latency)


def unauthorized() -> ScriptedError:
    return ScriptedError(401, "authentication_error", "invalid x-api-key")


# Validation ----------------------------------------------------------------------------------


def conversation_problems(body: dict[str, Any]) -> list[str]:
    """What the real API would reject in this request (empty when it is valid)."""
    problems: list[str] = []
    messages = body.get("messages")
    if not isinstance(body.get("model"), str) or not body.get("model"):
        problems.append("model: field required")
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        problems.append("max_tokens: must be a positive integer")
    if not isinstance(messages, list) or not messages:
        return [*problems, "messages: at least one message is required"]

    turns: list[dict[str, Any]] = []  # consecutive same-role messages are one turn, as the API does
    for index, msg in enumerate(messages):
        role, content = msg.get("role"), msg.get("content")
        if role not in ("user", "assistant"):
            problems.append(f"messages.{index}.role: must be user or assistant")
            continue
        blocks = [text(content)] if isinstance(content, str) else content
        if not isinstance(blocks, list) or not blocks or blocks == [text("")]:
            last = index == len(messages) - 1 and role == "assistant"
            if not last:
                problems.append(f"messages.{index}: all messages must have non-empty content")
            continue
        if not all(isinstance(block, dict) for block in blocks):
            problems.append(f"messages.{index}.content: every content block must be an object")
            continue
        for block in blocks:
            if block.get("type") == "text" and not block.get("text"):
                problems.append(f"messages.{index}: text content blocks must be non-empty")
        if turns and turns[-1]["role"] == role:
            turns[-1]["blocks"].extend(blocks)
        else:
            turns.append({"role": role, "blocks": list(blocks), "index": index})
    if turns and turns[0]["role"] != "user":
        problems.append("messages.0: the first message must use the user role")

    for position, turn in enumerate(turns):
        blocks = turn["blocks"]
        if turn["role"] == "assistant":
            tool_ids = [b.get("id") for b in blocks if b.get("type") == "tool_use"]
            following = turns[position + 1] if position + 1 < len(turns) else None
            if tool_ids and following is not None:
                answered = {
                    b.get("tool_use_id")
                    for b in following["blocks"]
                    if b.get("type") == "tool_result"
                }
                missing = [i for i in tool_ids if i not in answered]
                if missing:
                    problems.append(
                        f"messages.{turn['index']}: tool_use ids were found without tool_result "
                        f"blocks immediately after: {', '.join(map(str, missing))}"
                    )
        else:
            results = [b for b in blocks if b.get("type") == "tool_result"]
            previous = turns[position - 1] if position > 0 else None
            offered = (
                {b.get("id") for b in previous["blocks"] if b.get("type") == "tool_use"}
                if previous
                else set()
            )
            stray = [b.get("tool_use_id") for b in results if b.get("tool_use_id") not in offered]
            if stray:
                problems.append(
                    f"messages.{turn['index']}: unexpected tool_use_id found in tool_result "
                    f"blocks: {', '.join(map(str, stray))}"
                )
            kinds = [b.get("type") == "tool_result" for b in blocks]
            if results and kinds != sorted(kinds, reverse=True):
                problems.append(
                    f"messages.{turn['index']}: tool_result blocks must come before any other "
                    "content in a user message"
                )

    def breakpoints(blocks: Any) -> int:
        return sum(1 for b in blocks or [] if isinstance(b, dict) and "cache_control" in b)

    system = body.get("system")
    count = breakpoints(system if isinstance(system, list) else [])
    count += breakpoints(body.get("tools"))
    for msg in messages:
        if isinstance(msg.get("content"), list):
            count += breakpoints(msg["content"])
    if count > 4:
        problems.append(f"a maximum of 4 blocks with cache_control may be provided, found {count}")
    return problems


# The server ----------------------------------------------------------------------------------


class FakeMessagesAPI:
    """A scripted Messages API server; use as a context manager or start()/stop()."""

    def __init__(
        self,
        script: Iterable[ScriptItem] = (),
        *,
        fallback: Responder | None = None,
        validate: bool = True,
    ) -> None:
        self.fallback = fallback
        self.validate = validate
        self.requests: list[dict[str, Any]] = []  # every body received, valid or not
        self.request_headers: list[dict[str, str]] = []
        self.invalid: list[list[str]] = []  # problems of each rejected request
        self.max_in_flight = 0
        self._script: deque[ScriptItem] = deque(script)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # scripting

    def push(self, *items: ScriptItem) -> None:
        """Queue answers for the next requests, in order."""
        with self._lock:
            self._script.extend(items)

    @property
    def remaining(self) -> int:
        """Scripted answers not used yet."""
        with self._lock:
            return len(self._script)

    @property
    def url(self) -> str:
        assert self._server is not None, "FakeMessagesAPI is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # lifecycle

    def start(self) -> FakeMessagesAPI:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out as separate writes: without this, Nagle's algorithm
                # and the client's delayed ACK add ~40 ms to every answer.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                api._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-messages-api",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeMessagesAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # serving

    def _next_answer(self, body: dict[str, Any]) -> ScriptedReply | ScriptedError | Disconnect:
        with self._lock:
            item = self._script.popleft() if self._script else self.fallback
        if item is None:
            return ScriptedError(
                400,
                "invalid_request_error",
                f"fake Messages API: script exhausted at request #{len(self.requests)}",
            )
        if callable(item):
            item = item(body)
        return ScriptedReply(item) if isinstance(item, dict) else item

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length)
        if handler.path.split("?")[0] != "/v1/messages":
            self._send(handler, ScriptedError(404, "not_found_error", f"no route {handler.path}"))
            return
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            self._send(handler, ScriptedError(400, "invalid_request_error", "body is not JSON"))
            return
        with self._lock:
            self.requests.append(body)
            self.request_headers.append({k.lower(): v for k, v in handler.headers.items()})
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            problems = conversation_problems(body) if self.validate else []
            if problems:
                with self._lock:
                    self.invalid.append(problems)
                answer: ScriptedReply | ScriptedError | Disconnect = ScriptedError(
                    400, "invalid_request_error", "; ".join(problems)
                )
            else:
                answer = self._next_answer(body)
            if answer.latency > 0:
                self._stopping.wait(answer.latency)
            self._send(handler, answer, body)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _send(
        self,
        handler: BaseHTTPRequestHandler,
        answer: ScriptedReply | ScriptedError | Disconnect,
        body: dict[str, Any] | None = None,
    ) -> None:
        request_id = f"req_fake_{next(self._ids):04d}"
        if isinstance(answer, Disconnect):
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        headers = {"request-id": request_id}
        if isinstance(answer, ScriptedError):
            status = answer.status
            headers.update(answer.headers)
            payload: dict[str, Any] = {
                "type": "error",
                "error": {"type": answer.error_type, "message": answer.message},
                "request_id": request_id,
            }
        else:
            status = 200
            payload = self._complete_message(answer.message, body or {})
        data = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(data)))
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            pass  # the client went away (cancelled); nothing to tell it

    def _complete_message(self, partial: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        content = copy.deepcopy(partial.get("content", []))
        has_tool_use = any(block.get("type") == "tool_use" for block in content)
        return {
            "id": partial.get("id", f"msg_fake_{next(self._ids):04d}"),
            "type": "message",
            "role": "assistant",
            "model": partial.get("model", request.get("model", "claude-fake")),
            "content": content,
            "stop_reason": partial.get("stop_reason", "tool_use" if has_tool_use else "end_turn"),
            "stop_sequence": partial.get("stop_sequence"),
            "usage": {**DEFAULT_USAGE, **partial.get("usage", {})},
        }
