"""Hostile HTTP servers on loopback, started in a thread, for checking what a client prints about a bad answer.

An echoing proxy or a debugging endpoint sends the request back: its headers (the Basic `Authorization` header is
base64 of `user:password`), its body, and, as some servers log them, the credentials decoded and re-encoded
(literal, JSON-escaped, URL-encoded, hex, base64 of the password alone). A client that prints any part of such an
answer leaks the secret in one of those forms, so every form is in the answer, on its first line.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KINDS = ("echo", "html", "binary", "clickhouse-echo")
WELCOME_PAGE = b"<!DOCTYPE html>\n<html><head><title>Welcome</title></head><body>It works</body></html>\n"


def credential_forms(user: str, password: str) -> dict[str, str]:
    """Every text form of a password the echo answers contain (and a client must redact)."""
    raw = password.encode()
    pair = f"{user}:{password}".encode()
    return {
        "literal": password,
        "json": json.dumps(password)[1:-1],
        "json-utf8": json.dumps(password, ensure_ascii=False)[1:-1],
        "url": urllib.parse.quote(password, safe=""),
        "url-lower": re.sub("%[0-9A-F]{2}", lambda escape: escape.group().lower(),
                            urllib.parse.quote(password, safe="")),
        "form": urllib.parse.quote_plus(password),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "base64": base64.b64encode(raw).decode(),
        "base64 user:password": base64.b64encode(pair).decode(),
    }


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class EchoServer:
    """Where the server listens and what it received."""

    url: str
    port: int
    requests: list[Received] = field(default_factory=list)


def echo_text(request: Received) -> str:
    """One line holding the request and every form of the credentials of its Basic Authorization header."""
    user = password = ""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        user, _, password = base64.b64decode(token).decode(errors="replace").partition(":")
    forms = credential_forms(user, password) if password else {}
    echoed = {"method": request.method, "path": request.path, "headers": request.headers,
              "body": request.body.decode(errors="replace"), "credentials": forms}
    plain = " ".join(f"{name}={value}" for name, value in forms.items())
    return f"echo: {plain} {json.dumps(echoed, ensure_ascii=False)}\n"


class Handler(BaseHTTPRequestHandler):
    """Answers every GET and POST according to the server's kind."""

    server: _Server

    def do_GET(self) -> None:
        self.answer()

    def do_POST(self) -> None:
        self.answer()

    def log_message(self, *_: object) -> None:
        """Quiet: the tests look at what the client prints, not at the server's log."""

    def answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = Received(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
        self.server.requests.append(request)
        headers: dict[str, str] = {}
        if self.server.kind == "html":
            status, body = 200, WELCOME_PAGE
            headers["Content-Type"] = "text/html; charset=utf-8"
        elif self.server.kind == "binary":
            status, body = 200, bytes(range(256)) * 4
            headers["Content-Type"] = "application/octet-stream"
        elif self.server.kind == "clickhouse-echo" and request.body.strip() == b"SELECT version()":
            status, body = 200, b"24.8.4.13\n"
            headers["X-ClickHouse-Server-Display-Name"] = "echo"
        elif self.server.kind == "clickhouse-echo":
            status, body = 500, ("Code: 60. DB::Exception: " + echo_text(request)).encode()
            headers["X-ClickHouse-Server-Display-Name"] = "echo"
            headers["X-ClickHouse-Exception-Code"] = "60"
        else:
            status, body = self.server.status, echo_text(request).encode()
            headers["Content-Type"] = "application/json"
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, kind: str, status: int):
        super().__init__(("127.0.0.1", 0), Handler)
        self.kind, self.status = kind, status
        self.requests: list[Received] = []


@contextmanager
def serve(kind: str = "echo", status: int = 500) -> Iterator[EchoServer]:
    """A server on 127.0.0.1 (a free port) until the block ends.

    kind: `echo` sends the request back with `status`; `html` is a web server's welcome page; `binary` answers
    bytes 0-255; `clickhouse-echo` looks like ClickHouse (X-ClickHouse-* headers, a version for
    `SELECT version()`) but answers every other query with a ClickHouse-style error that echoes the request.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    server = _Server(kind, status)
    thread = threading.Thread(target=server.serve_forever, name=f"echo-server-{kind}", daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        yield EchoServer(f"http://127.0.0.1:{port}", port, server.requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
