"""A stand-in for a ClickHouse server's HTTP interface, for tests: the statements run on the real engine (chDB).

No modern clickhouse-server is installable here (Debian ships 18.16, which cannot create the schema) and chDB does
not listen on HTTP, so this process does: the HTTP side follows ClickHouse's HTTPHandler (src/Server/HTTPHandler.cpp,
exceptionCodeToHTTPStatus.cpp), the SQL side is chDB on one folder. Run as a process (chDB hosts one engine per
process, and a test process opens its own stores): it reads one line of JSON from stdin, `{"folder": PATH,
"users": {NAME: PASSWORD}, "display_name": NAME}`, so no password is ever on a command line, listens on 127.0.0.1 on
a free port, prints `port N`, and serves until stdin closes (the test ends, or dies).

What it does as a server does:
- GET/POST `/` and `/ping`; the query is the `query` parameter, a line break, then the body (Content-Length or
  chunked; Content-Encoding gzip, deflate, lz4, zstd); `INSERT ... FORMAT X` takes its data from the rest of the
  body (Native, RowBinary, any input format chDB reads), written to a file the engine reads `FROM INFILE`;
- parameters: `database` (or X-ClickHouse-Database), `default_format` (or X-ClickHouse-Format), `param_NAME` bound
  by the engine, `query_id`, `session_id` (a session used by two requests at once is refused, code 373), the other
  reserved ones ignored, every other parameter a setting applied by the engine (an unknown one fails there);
- users: Basic auth, X-ClickHouse-User/X-ClickHouse-Key, or `user`/`password` parameters (mixing them is refused);
  no credentials is user `default`; a wrong user or password is code 516 (AUTHENTICATION_FAILED), HTTP 403;
- GET runs with readonly=2, as a server does: writes are refused by the engine (code 164); a `readonly` parameter
  is honoured too (the engine cannot lower `readonly` again, so each level has connections of its own);
- several statements in one request are refused (code 62), as a server does; chDB alone would run them all;
- answers: X-ClickHouse-Server-Display-Name, -Query-Id, -Format and Content-Type of the output format (for statements
  that return rows), -Timezone, -Summary; the body compressed when `enable_http_compression=1` and Accept-Encoding
  allow, preferring zstd, then lz4, gzip, deflate, as a server does;
- errors: `Code: N. DB::Exception: ... (NAME) (version V)`, X-ClickHouse-Exception-Code, the HTTP status a server
  maps the code to.

What it does not do is in docs/testing.md ("The ClickHouse server stand-in").
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import os
import queue
import re
import socket
import sys
import tempfile
import threading
import urllib.parse
import uuid
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import chdb
import lz4.frame
from backports import zstd

# Parameters a server reads itself; every other one (but `param_*`, `database`, `default_format`, `query`) is a
# setting. From HTTPHandler::processQuery's reserved_param_names.
RESERVED_PARAMETERS = {"compress", "decompress", "user", "password", "quota_key", "query_id", "stacktrace",
                       "buffer_size", "wait_end_of_query", "session_id", "session_timeout", "session_check",
                       "client_protocol_version", "close_session", "query", "database", "default_format"}

# exceptionCodeToHTTPStatus, by the error's name (chDB's messages end with it); anything else is 500.
HTTP_STATUS_OF_ERROR = {
    **dict.fromkeys(("UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED", "ACCESS_DENIED",
                     "SET_NON_GRANTED_ROLE"), 403),
    **dict.fromkeys(("BAD_ARGUMENTS", "CANNOT_COMPILE_REGEXP", "CANNOT_PARSE_TEXT", "CANNOT_PARSE_ESCAPE_SEQUENCE",
                     "CANNOT_PARSE_QUOTED_STRING", "CANNOT_PARSE_DATE", "CANNOT_PARSE_DATETIME", "CANNOT_PARSE_NUMBER",
                     "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING", "CANNOT_PARSE_IPV4", "CANNOT_PARSE_IPV6",
                     "CANNOT_PARSE_INPUT_ASSERTION_FAILED", "CANNOT_PARSE_UUID", "DUPLICATE_COLUMN", "ILLEGAL_COLUMN",
                     "UNKNOWN_ELEMENT_IN_AST", "UNKNOWN_TYPE_OF_AST_NODE", "THERE_IS_NO_COLUMN", "TOO_DEEP_AST",
                     "TOO_BIG_AST", "UNEXPECTED_AST_STRUCTURE", "SYNTAX_ERROR", "INCORRECT_DATA", "TYPE_MISMATCH",
                     "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE"), 400),
    **dict.fromkeys(("UNKNOWN_TABLE", "UNKNOWN_FUNCTION", "UNKNOWN_IDENTIFIER", "UNKNOWN_TYPE", "UNKNOWN_STORAGE",
                     "UNKNOWN_DATABASE", "UNKNOWN_SETTING", "UNKNOWN_DIRECTION_OF_SORTING",
                     "UNKNOWN_AGGREGATE_FUNCTION", "UNKNOWN_FORMAT", "UNKNOWN_DATABASE_ENGINE",
                     "UNKNOWN_TYPE_OF_QUERY", "UNKNOWN_ROLE"), 404),
    "QUERY_IS_TOO_LARGE": 413, "NOT_IMPLEMENTED": 501, "SOCKET_TIMEOUT": 503, "CANNOT_OPEN_FILE": 503,
    "HTTP_LENGTH_REQUIRED": 411, "TIMEOUT_EXCEEDED": 408, "CANNOT_SCHEDULE_TASK": 503,
}

# Statements that return rows, and so an output format (X-ClickHouse-Format); the rest answer with no body.
RESULT_STATEMENTS = {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "CHECK", "("}
# Statements whose effect outlives the request on a connection of the pool: a server keeps them in the HTTP
# session; the stand-in keeps no session state, so it refuses them rather than leak them into other requests.
SESSION_STATEMENTS = {"SET", "USE"}
CONTENT_TYPES = {"TabSeparated": "text/tab-separated-values; charset=UTF-8", "TSV": "text/tab-separated-values; "
                 "charset=UTF-8", "CSV": "text/csv; charset=UTF-8; header=absent", "JSON": "application/json; "
                 "charset=UTF-8", "JSONCompact": "application/json; charset=UTF-8",
                 "JSONEachRow": "application/x-ndjson; charset=UTF-8"}
BINARY_FORMATS = ("Native", "RowBinary", "Parquet", "Arrow", "ORC", "Avro")
RESPONSE_CODECS: dict[str, Callable[[bytes], bytes]] = {  # in a server's order of preference
    "zstd": zstd.compress, "lz4": lz4.frame.compress, "gzip": gzip.compress, "deflate": zlib.compress}
REQUEST_CODECS: dict[str, Callable[[bytes], bytes]] = {
    "zstd": zstd.decompress, "lz4": lz4.frame.decompress, "gzip": gzip.decompress, "deflate": zlib.decompress}
TOKEN = re.compile(r"""\s+|--[^\n]*|/\*.*?\*/|'(?:\\.|''|[^'\\])*'|"(?:\\.|[^"\\])*"|`(?:\\.|[^`\\])*`"""
                   r"""|[A-Za-z_][A-Za-z0-9_]*|.""", re.S)
POOL_SIZE = 4  # engine connections per `readonly` level: requests beyond wait for one to be free


class ServerError(Exception):
    """An error a server sends as `Code: N. DB::Exception: ...`."""

    def __init__(self, code: int, name: str, message: str, text: str = ""):
        super().__init__(text or f"Code: {code}. DB::Exception: {message}. ({name})")
        self.code, self.name = code, name


def engine_error(exc: Exception) -> ServerError:
    """chDB's exception as the server's: its text as it is, its code and name read from it."""
    text = str(exc).strip()
    text = text[text.find("Code: "):] if "Code: " in text else text
    code = re.match(r"Code: (\d+)\.", text)
    name = re.search(r"\(([A-Z_0-9]+)\)\s*$", text)
    return ServerError(int(code.group(1)) if code else 1001, name.group(1) if name else "STD_EXCEPTION", "", text)


@dataclass
class Statement:
    """One request's SQL: its first keyword, where the data of an INSERT starts, the output format it names."""

    sql: str  # the statement alone (an INSERT's data cut off)
    keyword: str
    insert_format: str | None
    data: bytes
    output_format: str | None


def parse(text: bytes) -> Statement:
    """Split a request into its one statement and an INSERT's data, as the server's parser does; several
    statements are refused. Latin-1 keeps every byte's position, binary data included."""
    decoded = text.decode("latin-1")
    tokens: list[str] = []
    ended_at = None
    for match in TOKEN.finditer(decoded):
        token = match.group()
        if token.isspace() or token.startswith(("--", "/*")):
            continue
        if ended_at is not None:
            raise ServerError(62, "SYNTAX_ERROR", "Syntax error (Multi-statements are not allowed): failed at "
                                                  f"position {ended_at + 1} (end of query): {decoded[ended_at:][:40]}")
        if token == ";":
            ended_at = match.start()
            continue
        tokens.append(token)
        if tokens[0].upper() == "INSERT" and len(tokens) >= 3 and tokens[-2].upper() == "FORMAT" \
                and token[:1].isalpha():
            rest = re.match(r"[ \t]*\r?\n?", decoded[match.end():])
            data_at = match.end() + (rest.end() if rest else 0)
            return Statement(text[:match.end()].decode(), "INSERT", token, text[data_at:], None)
    names_format = len(tokens) >= 2 and tokens[-2].upper() == "FORMAT"
    return Statement(text.decode("utf-8", errors="replace"), tokens[0].upper() if tokens else "", None, b"",
                     tokens[-1] if names_format else None)


class Engine:
    """chDB on one folder, through pools of connections, one pool per `readonly` level: each connection keeps its own
    current database and settings (chDB's are per connection), so a request's are set only where they differ from
    what that connection has."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.pools: dict[str, queue.Queue] = defaultdict(queue.Queue)
        self.opened: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()
        self.version, self.timezone = self.run_once("SELECT version(), timezone()").decode().strip().split("\t")

    def run_once(self, sql: str) -> bytes:
        with self.connection("0") as connection:
            return connection["handle"].query(sql, "TabSeparated").bytes()

    @contextmanager
    def connection(self, readonly: str) -> Iterator[dict[str, Any]]:
        pool = self.pools[readonly]
        with self.lock:
            if pool.empty() and self.opened[readonly] < POOL_SIZE:
                self.opened[readonly] += 1
                handle = chdb.connect(str(self.folder))
                handle.query(f"SET readonly = {int(readonly)}", "TabSeparated")
                pool.put({"handle": handle, "database": "default", "settings": {}})
        connection = pool.get()
        try:
            yield connection
        finally:
            pool.put(connection)

    def execute(self, statement: Statement, database: str, settings: dict[str, str], parameters: dict[str, str],
                output_format: str, readonly: str) -> tuple[bytes, dict[str, str]]:
        """The statement's output and its summary, on a connection set to the request's database and settings."""
        with self.connection(readonly) as connection:
            handle = connection["handle"]
            try:
                if connection["database"] != database:
                    handle.query(f"USE {quote_identifier(database)}", "TabSeparated")
                    connection["database"] = database
                self._settle(connection, settings)
                if statement.insert_format is None:
                    result = handle.query(statement.sql, output_format, params=parameters)
                    return result.bytes() or b"", summary(result, written=statement.keyword == "INSERT")
                with tempfile.NamedTemporaryFile(dir=self.folder, suffix=".data") as data:
                    data.write(statement.data)
                    data.flush()
                    head = statement.sql[:statement.sql.upper().rfind("FORMAT")]
                    result = handle.query(f"{head} FROM INFILE {quote_string(data.name)} FORMAT "
                                          f"{statement.insert_format}", "TabSeparated", params=parameters)
                    return b"", summary(result, written=True)
            except ServerError:
                raise
            except Exception as exc:
                raise engine_error(exc) from None

    @staticmethod
    def _settle(connection: dict[str, Any], settings: dict[str, str]) -> None:
        """Set what the request asks for, and put back to their defaults the settings an earlier request changed."""
        handle, current = connection["handle"], connection["settings"]
        if unknown := next((n for n in settings if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n)), None):
            raise ServerError(115, "UNKNOWN_SETTING", f"Unknown setting '{unknown}'")
        for name in [n for n in current if n not in settings]:
            handle.query(f"SET {name} = DEFAULT", "TabSeparated")
            del current[name]
        for name, value in settings.items():
            if current.get(name) != value:
                handle.query(f"SET {name} = {quote_string(value)}", "TabSeparated")
                current[name] = value


def summary(result: Any, written: bool) -> dict[str, str]:
    """X-ClickHouse-Summary from chDB's statistics (an INSERT ... FROM INFILE reads exactly what it writes)."""
    rows, size = str(result.rows_read()), str(result.bytes_read())
    zero = "0"
    return {"read_rows": zero if written else rows, "read_bytes": zero if written else size,
            "written_rows": rows if written else zero, "written_bytes": size if written else zero,
            "total_rows_to_read": zero, "result_rows": zero if written else rows,
            "result_bytes": zero if written else size, "elapsed_ns": str(int(result.elapsed() * 1e9))}


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Sessions:
    """Which session ids a request is using now: a server refuses a second request in a busy session."""

    def __init__(self) -> None:
        self.busy: set[str] = set()
        self.lock = threading.Lock()

    @contextmanager
    def using(self, session_id: str | None) -> Iterator[None]:
        if not session_id:
            yield
            return
        with self.lock:
            if session_id in self.busy:
                raise ServerError(373, "SESSION_IS_LOCKED", f"Session {session_id} is locked by a concurrent client")
            self.busy.add(session_id)
        try:
            yield
        finally:
            with self.lock:
                self.busy.discard(session_id)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clickhouse-connect's connection pool expects
    server: StandIn

    def setup(self) -> None:
        """No Nagle delay: headers and body go out as separate writes, and a client's delayed ACK would add 40 ms."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read what the clients print."""

    def do_GET(self) -> None:
        self.handle_request()

    def do_POST(self) -> None:
        self.handle_request()

    def handle_request(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path in ("/ping", "/") and not url.query and self.command == "GET":
            self.answer(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            return
        if url.path != "/":
            self.answer(404, f"There is no handle {url.path}\n".encode(), {})
            return
        try:
            body = self.read_body()
            params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            self.answer(200, *self.run(params, body))
        except ServerError as error:
            self.answer(HTTP_STATUS_OF_ERROR.get(error.name, 500),
                        f"{error} (version {self.server.engine.version})\n".encode(),
                        {"X-ClickHouse-Exception-Code": str(error.code)})

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            body = b"".join(chunks)
        elif "Content-Length" in self.headers:
            body = self.rfile.read(int(self.headers["Content-Length"]))
        elif self.command == "POST":
            raise ServerError(381, "HTTP_LENGTH_REQUIRED", "The Transfer-Encoding is not chunked and there is no "
                                                           "Content-Length header for POST request")
        else:
            body = b""
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        if encoding and encoding != "identity":
            if encoding not in REQUEST_CODECS:
                raise ServerError(48, "NOT_IMPLEMENTED", f"The stand-in cannot decode Content-Encoding {encoding}")
            try:
                body = REQUEST_CODECS[encoding](body)
            except Exception as exc:
                raise ServerError(432, "UNKNOWN_CODEC", f"Cannot decode the {encoding} request body: {exc}") from None
        return body

    def authenticate(self, params: dict[str, str]) -> str:
        """The user, as HTTPHandler::authenticateUser finds it; wrong credentials are AUTHENTICATION_FAILED."""
        header_user, key = self.headers.get("X-ClickHouse-User", ""), self.headers.get("X-ClickHouse-Key", "")
        authorization = self.headers.get("Authorization", "")
        in_params = any(name in params for name in ("user", "password", "quota_key"))
        if sum(map(bool, (header_user or key, authorization, in_params))) > 1:
            raise ServerError(516, "AUTHENTICATION_FAILED", "Invalid authentication: it is not allowed to use "
                                                            "several authentication methods simultaneously")
        if header_user or key:
            user, password = header_user or "default", key
        elif authorization:
            scheme, _, encoded = authorization.partition(" ")
            if scheme.lower() != "basic":
                raise ServerError(516, "AUTHENTICATION_FAILED",
                                  f"Invalid authentication: '{scheme}' HTTP Authorization scheme is not supported")
            try:
                user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise ServerError(516, "AUTHENTICATION_FAILED", "Invalid authentication: bad Basic credentials")\
                    from None
        else:
            user, password = params.get("user", "default"), params.get("password", "")
        users = self.server.users
        if user not in users or users[user] != password:
            raise ServerError(516, "AUTHENTICATION_FAILED", f"{user}: Authentication failed: password is incorrect, "
                                                            "or there is no user with such name")
        return user

    def run(self, params: dict[str, str], body: bytes) -> tuple[bytes, dict[str, str]]:
        """Authenticate, run the request's statement, and the answer's body and headers."""
        self.authenticate(params)
        if params.get("decompress", "0") not in ("0", "false") or params.get("compress", "0") not in ("0", "false"):
            raise ServerError(48, "NOT_IMPLEMENTED", "ClickHouse's own block compression (compress, decompress) is "
                                                     "not supported by the stand-in")
        query = params.get("query", "")
        statement = parse((query + "\n").encode() + body if query else body)
        if not statement.keyword:
            raise ServerError(62, "SYNTAX_ERROR", "Empty query")
        if statement.keyword in SESSION_STATEMENTS:
            raise ServerError(48, "NOT_IMPLEMENTED", f"{statement.keyword} keeps state in an HTTP session, which the "
                                                     "stand-in does not keep")
        database = self.headers.get("X-ClickHouse-Database") or params.get("database") or "default"
        default_format = self.headers.get("X-ClickHouse-Format") or params.get("default_format") or "TabSeparated"
        output_format = statement.output_format or default_format
        settings = {name: value for name, value in params.items()
                    if name not in RESERVED_PARAMETERS and not name.startswith("param_") and name}
        parameters = {name[len("param_"):]: value for name, value in params.items() if name.startswith("param_")}
        readonly = settings.pop("readonly", "2" if self.command == "GET" else "0")
        if readonly not in ("0", "1", "2"):
            raise ServerError(36, "BAD_ARGUMENTS", f"Setting readonly must be 0, 1 or 2, not {readonly!r}")
        query_id = params.get("query_id") or self.headers.get("X-ClickHouse-Query-Id") or str(uuid.uuid4())
        with self.server.sessions.using(params.get("session_id")):
            output, statistics = self.server.engine.execute(statement, database, settings, parameters, output_format,
                                                            readonly)
        headers = {"X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Summary": json.dumps(statistics),
                   "X-ClickHouse-Timezone": settings.get("session_timezone") or self.server.engine.timezone,
                   "Content-Type": "text/plain; charset=UTF-8"}
        if statement.keyword in RESULT_STATEMENTS:
            headers["X-ClickHouse-Format"] = output_format
            headers["Content-Type"] = CONTENT_TYPES.get(output_format, "application/octet-stream" if output_format
                                                        .startswith(BINARY_FORMATS) else "text/plain; charset=UTF-8")
        if settings.get("enable_http_compression") in ("1", "true"):
            offered = self.headers.get("Accept-Encoding", "")
            if codec := next((name for name in RESPONSE_CODECS if name in offered), None):
                output = RESPONSE_CODECS[codec](output)
                headers["Content-Encoding"] = codec
        return output, headers

    def answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("X-ClickHouse-Server-Display-Name", self.server.display_name)
        headers.setdefault("Content-Type", "text/plain; charset=UTF-8")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Keep-Alive", "timeout=10")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class StandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, folder: Path, users: dict[str, str], display_name: str):
        super().__init__(("127.0.0.1", 0), Handler)
        self.engine = Engine(folder)
        self.users = users
        self.display_name = display_name
        self.sessions = Sessions()


def main() -> None:
    settings = json.loads(sys.stdin.readline())
    folder = Path(settings["folder"])
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    server = StandIn(folder, settings["users"], settings.get("display_name", "clickhouse-stand-in"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"port {server.server_address[1]}", flush=True)
    while sys.stdin.readline():  # until the test closes stdin, or ends
        pass
    server.shutdown()
    os._exit(0)  # at once: chDB's threads would keep the process waiting, and the folder is the test's to remove


if __name__ == "__main__":
    main()
