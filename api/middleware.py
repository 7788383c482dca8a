"""What every request meets before any route or key check: pure ASGI (no per-request
threads or body buffering), so a refusal costs almost nothing.

* a body larger than the cap is refused (413) from its Content-Length, unread, or as soon
  as a streamed one passes the cap;
* a body that is not JSON (by Content-Type) is refused (415);
* control characters in the path or query are refused (422);
* each key (or, without one, each client address) may make so many requests a minute (429
  with Retry-After);
* every response carries security headers; an access line is logged when configured (the
  path only: a query may carry a name).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.routing import Mount

log = logging.getLogger("liudong.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROBLEM_TYPE = "https://liudong.example/problems/"
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
    (b"permissions-policy", b"geolocation=(), camera=(), microphone=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
# Every answer is data, except the pages that set a policy of their own (/docs: api/docs, the web
# application's pages), which is kept.
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
CACHEABLE = ("/static/", "/docs/assets/")  # the pages' own scripts and styles, the same for everyone
BODY_METHODS = {"POST", "PUT", "PATCH"}


def problem(status: int, title: str, detail: str, rule: str, field: str | None = None,
            headers: list[tuple[bytes, bytes]] | None = None) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body: dict[str, Any] = {"type": PROBLEM_TYPE + rule, "title": title, "status": status, "detail": detail,
                            "rule": rule}
    if field is not None:
        body["errors"] = [{"field": field, "rule": rule, "message": detail}]
    raw = json.dumps(body).encode()
    return status, [(b"content-type", b"application/problem+json"), (b"content-length", str(len(raw)).encode()),
                    *(headers or [])], raw


def _no_body(headers: dict[bytes, bytes]) -> bool:
    """A request that sends no body at all (a POST that only names its target, such as a key
    rotation) has no media type to check; the route refuses it if it needs one."""
    if b"content-type" in headers or b"transfer-encoding" in headers:
        return False
    return headers.get(b"content-length", b"0").strip() == b"0"


class TokenBucket:
    """Requests per minute per caller, with a burst; thread-safe."""

    def __init__(self, per_minute: int, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.buckets: dict[bytes, tuple[float, float]] = {}
        self.lock = threading.Lock()

    MAX_BUCKETS = 100_000

    def _prune(self, now: float) -> None:
        """Forget the callers whose bucket has filled up again (as if never seen); if that is
        not enough (many callers at once), the half with the most tokens left. Never all, and
        never the callers nearest their limit first: clearing them would hand each caller over
        its limit a fresh burst."""
        left = {k: self._refilled(entry, now) for k, entry in self.buckets.items()}
        for key, tokens in left.items():
            if tokens >= self.burst:
                del self.buckets[key]
        if len(self.buckets) > self.MAX_BUCKETS // 2:
            by_tokens = sorted(self.buckets, key=lambda k: left[k], reverse=True)
            for key in by_tokens[: len(by_tokens) // 2]:
                del self.buckets[key]

    def _refilled(self, entry: tuple[float, float], now: float) -> float:
        """A bucket's tokens now: what it held, and what flowed in since."""
        tokens, last = entry
        return tokens + (now - last) * self.rate

    def waiting(self, who: bytes) -> bool:
        """Whether ``who`` is out of tokens now (nothing taken)."""
        now = time.monotonic()
        with self.lock:
            entry = self.buckets.get(who)
        return entry is not None and self._refilled(entry, now) < 1

    def take(self, who: bytes) -> float:
        """0 if the request may go ahead, else the seconds until it may."""
        now = time.monotonic()
        with self.lock:
            tokens = min(self.burst, self._refilled(self.buckets.get(who, (self.burst, now)), now))
            if tokens >= 1:
                self.buckets[who] = (tokens - 1, now)
                if len(self.buckets) > self.MAX_BUCKETS:
                    self._prune(now)
                return 0.0
            self.buckets[who] = (tokens, now)
            return (1 - tokens) / self.rate


IMPORTS_PATH = "/imports"  # takes a CSV file (text/csv) up to its own limit


def _credential(authorization: bytes) -> bytes | None:
    """The key or token an Authorization header carries, as the authenticator reads it: the
    scheme's case and the spaces around do not make it another caller."""
    scheme, _, credential = authorization.strip().partition(b" ")
    if not credential.strip():
        return (b"auth:" + scheme) if scheme else None
    return b"auth:" + scheme.lower() + b" " + credential.strip()


def _address(scope: Scope) -> bytes:
    return str((scope.get("client") or ("?",))[0]).encode()


# Set in the request's state by the web application when a session cookie is refused.
REFUSED_SESSION = "refused_session"


def _session_cookie(cookies: bytes) -> bytes | None:
    """The session the web application reads: Starlette's cookie parser keeps the last of two
    cookies of one name, so the bucket does too (found by a review: a made-up cookie before the
    real one gave the session a fresh bucket on every request)."""
    found = None
    for part in cookies.split(b";"):
        name, _, value = part.strip().partition(b"=")
        if name.strip() == b"liudong_session":
            found = (b"session:" + value.strip()) if value.strip() else None
    return found


# Headers a request may carry once: with two, the bucket and the authenticator could each read
# another one (found by a review: a second, made-up Authorization header escaped the rate limit).
SINGLE_HEADERS = (b"authorization", b"cookie")


def _logged_path(scope: Scope) -> str:
    """The request's path as its route names it, its values not written (found by a review: a
    path holding a name and a phone number went into the log as typed)."""
    path = str(scope.get("path", ""))
    if path.startswith(CACHEABLE):
        return path
    route = scope.get("route")
    template = getattr(route, "path", None)
    if route is None or isinstance(route, Mount) or not isinstance(template, str):
        return "(no route)"
    return template


def has_control_characters(scope: Scope) -> bool:
    """The request's path or query (decoded) holds control characters."""
    return bool(CONTROL.search(unquote_to_bytes(scope.get("query_string", b""))) or CONTROL.search(
        scope.get("path", "").encode("utf-8", "surrogateescape")))


def _with_instance(answer: tuple[int, list[tuple[bytes, bytes]], bytes],
                   scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """A refusal's problem document naming the path asked (``instance``), as every other
    problem does (found by a review: 413, 415 and 400 bodies had none)."""
    status, headers, raw = answer
    body = json.loads(raw)
    body["instance"] = scope.get("path", "")
    encoded = json.dumps(body).encode()
    return status, [(k, str(len(encoded)).encode() if k == b"content-length" else v) for k, v in headers], encoded


def _control_field(scope: Scope) -> str:
    """The query parameter whose value holds control characters (found by a review: the problem
    named only "query"), else "query" or "path"."""
    if CONTROL.search(scope.get("path", "").encode("utf-8", "surrogateescape")):
        return "path"
    for pair in scope.get("query_string", b"").split(b"&"):
        name, _, value = pair.partition(b"=")
        name_text = unquote_to_bytes(name.replace(b"+", b" "))
        if CONTROL.search(unquote_to_bytes(value)) and not CONTROL.search(name_text):
            return name_text.decode("utf-8", "replace")[:64]
    return "query"


def is_web_path(path: str) -> bool:
    """The web application's pages take HTML forms (api/web)."""
    return path in ("/login", "/logout") or path.startswith("/ui/")


class Guard:
    def __init__(self, app: ASGIApp, *, max_body: int, per_minute: int, burst: int, access_log: bool,
                 max_import: int | None = None) -> None:
        self.app = app
        self.max_body = max_body
        self.max_import = max_import if max_import is not None else max_body
        self.limiter = TokenBucket(per_minute, burst) if per_minute else None
        # Refused credentials per client address: made-up keys each get a bucket of their own
        # above, so an address whose keys keep being refused is slowed as a whole.
        self.refused = TokenBucket(per_minute, burst) if per_minute else None
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope.get("path", "")
        status_seen = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status_seen
            if message["type"] == "http.response.start":
                status_seen = message["status"]
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                if API_CSP[0] not in present:
                    headers.append(API_CSP)
                if b"cache-control" not in present and not path.startswith(CACHEABLE):
                    # Answers carry personal data more often than not: no cache keeps them (found by
                    # a review: lists of residents and operators' contacts had no header).
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        try:
            refusal = self._refuse(scope)
            if refusal is not None:
                await self._answer(send_with_headers, *_with_instance(refusal, scope))
                return
            if scope.get("method") in BODY_METHODS and b"content-length" not in dict(scope.get("headers", [])):
                # A streamed body: read it here, up to the cap, then hand it on.
                body = await self._read_capped(receive, self._limit(scope))
                if body is None:
                    await self._answer(send_with_headers, *_with_instance(self._too_large(self._limit(scope)), scope))
                    return
                receive = self._replay(body, receive)
            try:
                await self.app(scope, receive, send_with_headers)
            except Exception as error:  # answered 500 already; the kind only, its text may hold personal data
                log.error("%s %s failed: %s", scope.get("method"), path, type(error).__name__)
                if not status_seen:
                    await self._answer(send_with_headers, *problem(
                        500, "Internal server error", "the service failed; the error is logged by its kind",
                        "internal_error"))
        finally:
            # A refused key (401), or a session cookie the web application did not know
            # (made-up or expired; answered with the sign-in page): both count against the address.
            refused = status_seen == 401 or bool((scope.get("state") or {}).get(REFUSED_SESSION))
            if refused and self.refused is not None:
                self.refused.take(_address(scope))
            if self.access_log:
                log.info("%s %s %d %.1f ms", scope.get("method"), _logged_path(scope), status_seen,
                         (time.perf_counter() - started) * 1000)

    def _refuse(self, scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        raw = scope.get("headers", [])
        headers = dict(raw)
        for name in SINGLE_HEADERS:
            if name in headers and sum(1 for k, _ in raw if k == name) > 1:
                field = name.decode().title()
                return problem(400, "Bad request", f"send one {field} header", "header_repeated", field=field)
        method = scope.get("method", "GET")
        length = headers.get(b"content-length")
        limit = self._limit(scope)
        if length is not None:
            try:
                if int(length) > limit:
                    return self._too_large(limit)
            except ValueError:
                return problem(400, "Bad request", "Content-Length is not a number", "content_length")
        if has_control_characters(scope) and not scope.get("path", "").startswith("/ui/"):
            # (A page's address answers with a page in the reader's language: api/web.)
            field = _control_field(scope)
            return problem(422, "Invalid request", f"{field} holds control characters",
                           "control_characters", field=field)
        if method in BODY_METHODS and not _no_body(headers):
            content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if content_type != b"application/json" and not (
                    content_type == b"text/csv" and scope.get("path") == IMPORTS_PATH) and not (
                    content_type == b"application/x-www-form-urlencoded" and is_web_path(scope.get("path", ""))):
                got = content_type.decode("latin-1") or "nothing"
                return problem(415, "Unsupported media type", f"send the request body as application/json "
                               f"(got {got[:60]})", "content_type", field="Content-Type")
        if self.limiter is not None:
            # A key, else a signed-in browser's session, else the client's address (an office's
            # staff often share one address behind its proxy).
            credential = _credential(headers.get(b"authorization", b""))
            session = _session_cookie(headers.get(b"cookie", b""))
            if (credential is not None or session is not None) and self.refused is not None and (
                    self.refused.waiting(_address(scope))):
                return problem(429, "Too many requests", "slow down: too many refused keys or sessions from "
                               "this address", "rate_limited", headers=[(b"retry-after", b"60")])
            who = credential or session or _address(scope)
            wait = self.limiter.take(hashlib.sha256(who).digest())
            if wait:
                seconds = str(max(1, int(wait + 0.999))).encode()
                return problem(429, "Too many requests", "slow down: this key made too many requests",
                               "rate_limited", headers=[(b"retry-after", seconds)])
        return None

    def _limit(self, scope: Scope) -> int:
        return self.max_import if scope.get("path") == IMPORTS_PATH else self.max_body

    def _too_large(self, limit: int | None = None) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        return problem(413, "Content too large", f"the body is larger than {limit or self.max_body} bytes",
                       "body_too_large", field="body")

    async def _read_capped(self, receive: Receive, limit: int) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    @staticmethod
    def _replay(body: bytes, receive: Receive) -> Receive:
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    @staticmethod
    async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
