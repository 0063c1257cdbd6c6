"""Every request needs the server's token; WebSockets also need an origin of the server's own.

The token is accepted from an ``Authorization: Bearer`` header, an ``X-Sharin-Token`` header,
the ``sharin_token`` cookie or a ``token`` query parameter (the URL ``sharin ui`` prints, as
Jupyter's). A request that brings it in the query gets it back as a cookie (HttpOnly,
SameSite=Strict), so the browser's later requests carry it without putting it in every URL.

The ``Host`` header must name this machine's loopback (or the host the user bound the server
to), which stops DNS-rebinding pages from talking to the server at all; a state-changing request
authenticated by the cookie alone must come from the server's own origin.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs

__all__ = ["TokenGate"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "sharin_token"
_SAFE = {"GET", "HEAD", "OPTIONS"}


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in scope.get("headers") or []:
        out[k.decode("latin-1").lower()] = v.decode("latin-1")
    return out


class TokenGate:
    """ASGI middleware: refuses (401, or WebSocket close 1008) what lacks the token."""

    def __init__(
        self,
        app: ASGIApp,
        token: str,
        *,
        hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1", "[::1]"),
        origins: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.token = token
        self.hosts = {h.lower() for h in hosts}
        self.origins = {o.rstrip("/").lower() for o in origins}

    def _host_ok(self, host: str) -> bool:
        if not host:
            return True  # HTTP/1.0 without Host: only reachable from this machine's tools
        name = host.lower()
        if name.startswith("["):
            name = name.split("]")[0] + "]"
        elif ":" in name:
            name = name.rsplit(":", 1)[0]
        return name in self.hosts or "*" in self.hosts

    def _origin_ok(self, origin: str, host: str) -> bool:
        o = origin.rstrip("/").lower()
        return o in (f"http://{host.lower()}", f"https://{host.lower()}") or o in self.origins

    def _given(self, scope: Scope, headers: dict[str, str]) -> tuple[str | None, str]:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip(), "header"
        if "x-sharin-token" in headers:
            return headers["x-sharin-token"], "header"
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("token"):
            return query["token"][0], "query"
        if "cookie" in headers:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(headers["cookie"])
            except CookieError:  # a malformed cookie header holds no token
                return None, ""
            if COOKIE in jar:
                return jar[COOKIE].value, "cookie"
        return None, ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host = headers.get("host", "")
        token, where = self._given(scope, headers)
        ok = token is not None and secrets.compare_digest(
            token.encode("utf-8", "replace"), self.token.encode()
        )
        why = "" if ok else "a valid token is needed (open the URL `sharin ui` printed)"
        if ok and not self._host_ok(host):
            ok, why = False, f"this server does not answer to the host name {host!r}"
        origin = headers.get("origin")
        if ok and scope["type"] == "websocket" and origin and not self._origin_ok(origin, host):
            ok, why = False, f"WebSocket from the foreign origin {origin!r} refused"
        if (
            ok
            and scope["type"] == "http"
            and where == "cookie"
            and scope.get("method", "GET") not in _SAFE
            and origin
            and not self._origin_ok(origin, host)
        ):
            ok, why = False, f"request from the foreign origin {origin!r} refused"
        if not ok:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": why[:120]})
                return
            body = json.dumps({"error": why}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 401 if "token" in why else 403,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        if where != "query" or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/".encode()

        async def send_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie)]
            await send(message)

        await self.app(scope, receive, send_cookie)
