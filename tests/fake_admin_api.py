"""A local stand-in for the paid Anthropic Admin API's three report endpoints, for tests (127.0.0.1, port 0).

It follows the documented shapes (shared/reference/anthropic-admin-api.md §8), not the importer's code:
- headers: x-api-key must be the server's key (else 401 authentication_error), anthropic-version is required (400);
- cost_report and usage_report/messages: `starting_at` snapped to the UTC day, one bucket per day up to `ending_at`
  including days without usage (`results: []`), oldest first, at most `limit` buckets per page (default 7, max 31),
  results aggregated over the requested `group_by[]` dimensions, the others null; cost `amount` is a decimal string
  in cents with fractional cents;
- usage_report/messages with `bucket_width=1h`: `starting_at` snapped to the UTC hour, one bucket per hour (most
  hours of a day are empty), at most `limit` per page (default 24, max 168); a day's hourly results add up to its
  daily results exactly (the usage is generated per day and cut into hours);
- claude_code: `starting_at` must be YYYY-MM-DD, one day per call, pages over records (default 20, max 1000); records
  with and without `is_remote`/`subscription_type`, `date` in both documented formats;
- pagination: `has_more`/`next_page`; a page token only works with the same parameters as the first page (limit,
  group_by, window), so a client that drops a filter on a later page gets a 400;
- faults: 429 with or without retry-after, 5xx, hard failures per day, and a hold that keeps a request waiting;
  paging forever (`endless`): has_more true with a fresh page token on every page, the pages empty past the end,
  the first page again, or buckets of the days after the request's window;
  an echo, as a misbehaving proxy sends: the request's x-api-key header back, as it is, base64, URL-encoded and hex,
  in a page that is not JSON (even with status 200) or in a JSON error's message.

The organisation's data is generated per day from a seed, so the tests can compute exact expected totals.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import random
import re
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COST_PATH = "/v1/organizations/cost_report"
USAGE_PATH = "/v1/organizations/usage_report/messages"
CODE_PATH = "/v1/organizations/usage_report/claude_code"
LIMITS = {COST_PATH: (7, 31), USAGE_PATH: (7, 31), CODE_PATH: (20, 1000)}  # (default, maximum)
HOURLY_LIMITS = (24, 168)
WIDTHS = {COST_PATH: {"1d": dt.timedelta(days=1)},
          USAGE_PATH: {"1d": dt.timedelta(days=1), "1h": dt.timedelta(hours=1)}}

MODELS = {"claude-opus-5": "Claude Opus 5", "claude-sonnet-4-5": "Claude Sonnet 4.5"}
TOKEN_TYPES = {
    "uncached_input_tokens": "Input Tokens",
    "output_tokens": "Output Tokens",
    "cache_read_input_tokens": "Input Tokens, Cache Hit",
    "cache_creation.ephemeral_5m_input_tokens": "Input Tokens, Cache Write",
    "cache_creation.ephemeral_1h_input_tokens": "Input Tokens, 1h Cache Write",
}
WORKSPACES = [None, "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ", "wrkspc_01Hk3R9TWxq7CfQak00OiVw4"]
API_KEYS = [None, "apikey_01Rj2N8SVvo6BePZj99NhmiT", "apikey_01WCz1FkmYMm4gnmykNKUu3Q"]
COST_DESCRIPTION_FIELDS = ("description", "cost_type", "model", "token_type", "service_tier", "context_window",
                           "inference_geo")
USAGE_DIMENSIONS = ("api_key_id", "workspace_id", "model", "service_tier", "context_window", "inference_geo",
                    "account_id", "service_account_id")
USAGE_COUNTS = ("uncached_input_tokens", "cache_read_input_tokens", "output_tokens")


def empty_day(day: dt.date) -> bool:
    """Every fifth day the organisation used nothing: empty buckets, no Claude Code records."""
    return day.toordinal() % 5 == 0


@dataclass
class OrgData:
    """The organisation's usage, generated from the day (deterministic), with per-day overrides for tests."""

    extra_costs: dict[dt.date, list[dict[str, Any]]] = field(default_factory=dict)
    dropped_costs: dict[dt.date, int] = field(default_factory=dict)
    dropped_hourly: dict[dt.datetime, int] = field(default_factory=dict)  # hour -> its first results left out
    code_overrides: dict[dt.date, list[dict[str, Any]]] = field(default_factory=dict)  # day -> its records instead

    def cost_results(self, day: dt.date) -> list[dict[str, Any]]:
        """Finest grain: one result per workspace and description, amounts in cents with fractional cents."""
        if empty_day(day):
            return list(self.extra_costs.get(day, []))
        rng = random.Random(f"cost {day}")
        results = []
        for workspace in WORKSPACES:
            for model, name in MODELS.items():
                for token_type, label in rng.sample(sorted(TOKEN_TYPES.items()), 2):
                    cents = f"{rng.randint(0, 399)}.{rng.randint(0, 99999):05d}"
                    results.append({
                        "amount": cents, "currency": "USD", "cost_type": "tokens",
                        "description": f"{name} Usage - {label}", "model": model, "token_type": token_type,
                        "service_tier": "standard", "context_window": "0-200k", "inference_geo": "global",
                        "workspace_id": workspace})
        results.append({"amount": f"{rng.randint(1, 90)}.5", "currency": "USD", "cost_type": "web_search",
                         "description": "Web Search Usage", "model": None, "token_type": None, "service_tier": None,
                         "context_window": None, "inference_geo": None, "workspace_id": WORKSPACES[1]})
        return results[self.dropped_costs.get(day, 0):] + self.extra_costs.get(day, [])

    def usage_results(self, day: dt.date) -> list[dict[str, Any]]:
        if empty_day(day):
            return []
        rng = random.Random(f"usage {day}")
        results = []
        for api_key in API_KEYS:
            for workspace in WORKSPACES[:2]:
                for model in MODELS:
                    tier = rng.choice(["standard", "batch"])
                    results.append({
                        "uncached_input_tokens": rng.randint(0, 50000),
                        "cache_creation": {"ephemeral_1h_input_tokens": rng.randint(0, 3000),
                                           "ephemeral_5m_input_tokens": rng.randint(0, 9000)},
                        "cache_read_input_tokens": rng.randint(0, 200000), "output_tokens": rng.randint(0, 20000),
                        "server_tool_use": {"web_search_requests": rng.randint(0, 5)},
                        "api_key_id": api_key, "workspace_id": workspace, "model": model, "service_tier": tier,
                        "context_window": "0-200k", "inference_geo": "global",
                        "account_id": "user_01WCz1FkmYMm4gnmykNKUu3Q", "service_account_id": None})
        return results

    def usage_results_by_hour(self, day: dt.date) -> list[list[dict[str, Any]]]:
        """The day's results spread over its 24 hours: each one's counts cut at random between one to four hours
        from 07:00 to 19:59; the other hours are empty. Hour by hour they add up to usage_results(day) exactly
        (unless `dropped_hourly` leaves some out, as an API restating an hour would)."""
        hours: list[list[dict[str, Any]]] = [[] for _ in range(24)]
        rng = random.Random(f"usage hours {day}")
        for result in self.usage_results(day):
            active = sorted(rng.sample(range(7, 20), rng.randint(1, 4)))
            parts = [json.loads(json.dumps(result)) for _ in active]
            for path in (*((name,) for name in USAGE_COUNTS), ("server_tool_use", "web_search_requests"),
                         ("cache_creation", "ephemeral_1h_input_tokens"),
                         ("cache_creation", "ephemeral_5m_input_tokens")):
                total = value_at(result, path)
                cuts = sorted(rng.randint(0, total) for _ in active[1:])
                for part, low, high in zip(parts, [0, *cuts], [*cuts, total], strict=True):
                    value_at(part, path[:-1])[path[-1]] = high - low
            for hour, part in zip(active, parts, strict=True):
                hours[hour].append(part)
        midnight = dt.datetime.combine(day, dt.time(), dt.UTC)
        return [results[self.dropped_hourly.get(midnight + dt.timedelta(hours=h), 0):]
                for h, results in enumerate(hours)]

    def code_records(self, day: dt.date) -> list[dict[str, Any]]:
        """Five actor-rows; the same user local and remote; optional fields present or absent; both date forms.
        A day in `code_overrides` has the records a test chose instead."""
        if day in self.code_overrides:
            return self.code_overrides[day]
        if empty_day(day):
            return []
        rng = random.Random(f"code {day}")
        records = []
        actors = [({"type": "user_actor", "email_address": "ada@example.com"}, "iTerm.app", False),
                  ({"type": "user_actor", "email_address": "ada@example.com"}, "web", True),
                  ({"type": "user_actor", "email_address": "bob@example.com"}, "vscode", None),
                  ({"type": "api_actor", "api_key_name": "ci-bot"}, "tmux", None),
                  ({"type": "user_actor", "email_address": "cy@example.com"}, "vscode", False)]
        for number, (actor, terminal, remote) in enumerate(actors):
            record: dict[str, Any] = {
                "date": f"{day}T00:00:00Z" if number % 2 == 0 else day.isoformat(),
                "actor": actor, "organization_id": "12345678-1234-5678-1234-567812345678",
                "customer_type": "api" if actor["type"] == "api_actor" else "subscription",
                "terminal_type": terminal,
                "core_metrics": {"num_sessions": rng.randint(1, 20),
                                 "lines_of_code": {"added": rng.randint(0, 900), "removed": rng.randint(0, 300)},
                                 "commits_by_claude_code": rng.randint(0, 8),
                                 "pull_requests_by_claude_code": rng.randint(0, 2)},
                "tool_actions": {"edit_tool": {"accepted": rng.randint(0, 30), "rejected": rng.randint(0, 3)},
                                 "write_tool": {"accepted": rng.randint(0, 9), "rejected": 0}},
                "model_breakdown": [
                    {"model": model,
                     "tokens": {"input": rng.randint(0, 50000), "output": rng.randint(0, 15000),
                                "cache_read": rng.randint(0, 90000), "cache_creation": rng.randint(0, 4000)},
                     "estimated_cost": {"currency": "USD", "amount": rng.choice([186, 42, 113.5])}}
                    for model in list(MODELS)[: 1 + number % 2]],
            }
            if remote is not None:
                record["is_remote"] = remote
            if actor["type"] == "api_actor":
                record["subscription_type"] = None  # API customers: null; ada's remote row omits the field
            elif number % 2 == 0:
                record["subscription_type"] = "enterprise"
            records.append(record)
        return records

    # -- expected values for assertions -----------------------------------------------------------------------

    def billed_cents(self, days: list[dt.date]) -> Decimal:
        return sum((Decimal(r["amount"]) for d in days for r in self.cost_results(d)), Decimal(0))

    def usage_total(self, days: list[dt.date], path: tuple[str, ...]) -> int:
        return sum(value_at(result, path) for d in days for result in self.usage_results(d))

    def code_total(self, days: list[dt.date], token: str) -> int:
        return sum(m["tokens"][token] for d in days for r in self.code_records(d) for m in r["model_breakdown"])

    def code_estimate_cents(self, days: list[dt.date]) -> Decimal:
        return sum((Decimal(str(m["estimated_cost"]["amount"])) for d in days for r in self.code_records(d)
                    for m in r["model_breakdown"]), Decimal(0))


def code_record(day: dt.date, email: str, models: dict[str, tuple[dict[str, int], int]]) -> dict[str, Any]:
    """One user's Claude Code record of a day as a test chooses it: per model, its tokens (input, output,
    cache_read, cache_creation) and Claude Code's estimated cost in cents."""
    return {
        "date": day.isoformat(), "actor": {"type": "user_actor", "email_address": email},
        "organization_id": "12345678-1234-5678-1234-567812345678", "customer_type": "api", "terminal_type": "vscode",
        "core_metrics": {"num_sessions": 1, "lines_of_code": {"added": 0, "removed": 0}, "commits_by_claude_code": 0,
                         "pull_requests_by_claude_code": 0},
        "tool_actions": {},
        "model_breakdown": [{"model": model, "tokens": tokens, "estimated_cost": {"currency": "USD", "amount": cents}}
                            for model, (tokens, cents) in models.items()],
    }


def value_at(obj: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        obj = obj[name]
    return obj


@dataclass
class Fault:
    """Answer matching requests with an error: `times` times (None: always). day=None matches every request;
    width ('1d' or '1h') only requests for such buckets."""

    path: str
    status: int
    day: dt.date | None = None
    retry_after: str | None = None
    times: int | None = 1
    message: str = "injected failure"
    width: str | None = None
    echo: str | None = None  # 'text': a text/html page, 'json': a JSON error; both quote the request's key after
    # `message` (so its length sets where the key lands: the tests put it across a client's cut-off)


@dataclass
class Seen:
    path: str
    params: dict[str, list[str]]
    status: int
    at: float
    user_agent: str


def _token(payload: dict[str, Any]) -> str:
    return "page_" + base64.urlsafe_b64encode(json.dumps(payload, sort_keys=True).encode()).decode()


def _untoken(token: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(token.removeprefix("page_").encode()))


def _signature(params: dict[str, list[str]]) -> str:
    """Every parameter but the page: a later page must repeat them exactly."""
    items = sorted((k, v) for k, values in params.items() if k != "page" for v in values)
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]


def _width(params: dict[str, list[str]]) -> str:
    return params.get("bucket_width", ["1d"])[0]


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


class ApiError(Exception):
    def __init__(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.kind, self.headers = status, kind, headers or {}


class RawAnswer(Exception):
    """An answer that is not the API's JSON (a proxy's page), sent as it is."""

    def __init__(self, status: int, content_type: str, body: bytes):
        super().__init__(f"HTTP {status}")
        self.status, self.content_type, self.body = status, content_type, body


def echo_of(headers: dict[str, str]) -> str:
    """The request's x-api-key in every form a proxy's debug page might show it, then the other headers."""
    key = headers.get("x-api-key", "")
    forms = {"x-api-key": key, "x-api-key (base64)": base64.b64encode(key.encode()).decode(),
             "x-api-key (url-encoded)": urllib.parse.quote(key, safe=""), "x-api-key (hex)": key.encode().hex()}
    others = {name: value for name, value in headers.items() if name != "x-api-key"}
    return "".join(f"\n{name}: {value}" for name, value in {**forms, **others}.items())


class FakeAdminApi:
    """The server; use as a context manager. `url` is what ANTHROPIC_BASE_URL must be set to."""

    def __init__(self, key: str, data: OrgData | None = None):
        self.key = key
        self.data = data or OrgData()
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.echoes: list[str] = []  # every body an echo fault sent
        self.issued_tokens: Counter[str] = Counter()
        self.requested_tokens: Counter[str] = Counter()
        self.endless: dict[str, str] = {}  # path -> "empty", "repeat" or "more": it never stops paging
        self.hold_day: dt.date | None = None  # claude_code requests for this day wait for `release`
        self.arrived = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeAdminApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def requests_to(self, path: str, width: str | None = None) -> list[Seen]:
        """Requests to `path`; with a width, only those for such buckets ('1d' when bucket_width is not sent)."""
        return [s for s in self.seen if s.path == path and width in (None, _width(s.params))]

    def days_requested(self, path: str, width: str | None = None) -> set[dt.date]:
        """The UTC days each request to `path` covered."""
        days = set()
        for seen in self.requests_to(path, width):
            first, end = self._window(path, seen.params)
            days.update(first + dt.timedelta(days=n) for n in range((end - first).days))
        return days

    # -- request handling -----------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                params = urllib.parse.parse_qs(url.query, keep_blank_values=True)
                content_type = "application/json"
                try:
                    status, body, headers = 200, api._answer(url.path, params, dict(self.headers.items())), {}
                    payload = json.dumps(body, default=str).encode()
                except ApiError as exc:
                    status, headers = exc.status, exc.headers
                    payload = json.dumps({"type": "error", "error": {"type": exc.kind, "message": str(exc)},
                                          "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}).encode()
                except RawAnswer as exc:
                    status, headers, content_type, payload = exc.status, {}, exc.content_type, exc.body
                with api._lock:
                    api.seen.append(Seen(url.path, params, status, time.monotonic(),
                                         self.headers.get("user-agent", "")))
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("request-id", "req_011CSHoEeqs5C35K2UUqR7Fy")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                return None

        return Handler

    def _answer(self, path: str, params: dict[str, list[str]], headers: dict[str, str]) -> dict[str, Any]:
        lower = {k.lower(): v for k, v in headers.items()}
        bearer = lower.get("authorization", "").removeprefix("Bearer ")
        if self.key not in (lower.get("x-api-key"), bearer):
            raise ApiError(401, "authentication_error", "invalid x-api-key")
        if not lower.get("anthropic-version"):
            raise ApiError(400, "invalid_request_error", "anthropic-version header is required")
        if path not in LIMITS:
            raise ApiError(404, "not_found_error", "The requested resource could not be found.")
        if not params.get("starting_at"):
            raise ApiError(400, "invalid_request_error", "starting_at: field required")
        first, end = self._window(path, params)
        width = _width(params)
        if path in WIDTHS and width not in WIDTHS[path]:
            raise ApiError(400, "invalid_request_error", f"bucket_width: {width!r} is not supported here")
        self._inject(path, first, end, width, lower)
        default, maximum = HOURLY_LIMITS if width == "1h" else LIMITS[path]
        limit = int(params.get("limit", [default])[0])
        if not 1 <= limit <= maximum:
            raise ApiError(400, "invalid_request_error", f"limit: must be between 1 and {maximum}")
        offset = 0
        if params.get("page"):
            token = params["page"][0]
            with self._lock:
                self.requested_tokens[token] += 1
            state = _untoken(token)
            if state["sig"] != _signature(params):
                raise ApiError(400, "invalid_request_error", "page does not match the request's parameters")
            offset = state["offset"]
        if path == CODE_PATH:
            if first == self.hold_day:
                self.arrived.set()
                self.release.wait(60)
            items = self.data.code_records(first)
        else:
            items = self._buckets(path, params)
        endless = self.endless.get(path)
        if endless == "more":  # the days after the window, as if ending_at were a year later
            items = self._buckets(path, {**params, "ending_at": [f"{first + dt.timedelta(days=366)}T00:00:00Z"]})
        page = items[:limit] if endless == "repeat" else items[offset:offset + limit]
        more = bool(endless) or offset + limit < len(items)
        token = _token({"offset": offset + limit, "sig": _signature(params)}) if more else None
        if token:
            with self._lock:
                self.issued_tokens[token] += 1
        return {"data": page, "has_more": more, "next_page": token}

    @staticmethod
    def _window(path: str, params: dict[str, list[str]]) -> tuple[dt.date, dt.date]:
        """The UTC days [first, end) a request covers; claude_code takes exactly one YYYY-MM-DD day."""
        text = params["starting_at"][0]
        try:
            if path == CODE_PATH:
                if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                    raise ValueError(text)
                first = dt.date.fromisoformat(text)
                return first, first + dt.timedelta(days=1)
            first = _parse_time(text).date()
            end = _parse_time(params["ending_at"][0]) - dt.timedelta(microseconds=1) if params.get("ending_at") \
                else None
        except ValueError:
            raise ApiError(400, "invalid_request_error", f"starting_at: invalid value {text!r}") from None
        default_days = 1 if _width(params) == "1h" else 7  # as _buckets: 24 hourly or 7 daily buckets
        return first, end.date() + dt.timedelta(days=1) if end else first + dt.timedelta(days=default_days)

    def _inject(self, path: str, first: dt.date, end: dt.date, width: str, headers: dict[str, str]) -> None:
        """The first matching fault answers; a bucket request matches a fault day anywhere in its window."""
        with self._lock:
            for fault in self.faults:
                if fault.path != path or fault.times == 0 or fault.width not in (None, width):
                    continue
                if fault.day is not None and not first <= fault.day < end:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                message = fault.message + (echo_of(headers) if fault.echo else "")
                if fault.echo:
                    self.echoes.append(message)
                if fault.echo == "text":
                    raise RawAnswer(fault.status, "text/html; charset=utf-8",
                                    f"<html><body><pre>{message}</pre></body></html>".encode())
                kind = {429: "rate_limit_error", 401: "authentication_error", 403: "permission_error",
                        400: "invalid_request_error"}.get(fault.status, "api_error")
                raise ApiError(fault.status, kind, message,
                               {"retry-after": fault.retry_after} if fault.retry_after else {})

    def _buckets(self, path: str, params: dict[str, list[str]]) -> list[dict[str, Any]]:
        """Buckets from `starting_at` snapped down to the bucket start (UTC) while they end by `ending_at`
        (default: 7 days, or 24 hours of 1h buckets)."""
        width = WIDTHS[path][_width(params)]
        start = _parse_time(params["starting_at"][0])
        midnight = dt.datetime.combine(start.date(), dt.time(), dt.UTC)
        start = midnight + (start - midnight) // width * width
        end = _parse_time(params["ending_at"][0]) if params.get("ending_at") else start + width * (
            24 if width < dt.timedelta(days=1) else 7)
        group_by = set(params.get("group_by[]", []))
        hours: dict[dt.date, list[list[dict[str, Any]]]] = {}
        buckets = []
        while start + width <= end:
            day = start.date()
            if path == COST_PATH:
                results = self._group_costs(self.data.cost_results(day), group_by)
            elif width < dt.timedelta(days=1):
                if day not in hours:
                    hours[day] = self.data.usage_results_by_hour(day)
                results = self._group_usage(hours[day][start.hour], group_by)
            else:
                results = self._group_usage(self.data.usage_results(day), group_by)
            buckets.append({"starting_at": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "ending_at": (start + width).strftime("%Y-%m-%dT%H:%M:%SZ"), "results": results})
            start += width
        return buckets

    @staticmethod
    def _group_costs(results: list[dict[str, Any]], group_by: set[str]) -> list[dict[str, Any]]:
        kept = (("workspace_id",) if "workspace_id" in group_by else ()) + (
            COST_DESCRIPTION_FIELDS if "description" in group_by else ())
        groups: dict[tuple[Any, ...], Decimal] = {}
        for result in results:
            key = tuple(result.get(k) for k in kept)
            groups[key] = groups.get(key, Decimal(0)) + Decimal(result["amount"])
        out = []
        for key, cents in groups.items():
            row = dict.fromkeys(("workspace_id", *COST_DESCRIPTION_FIELDS))
            row.update(zip(kept, key, strict=True))
            out.append({"amount": str(cents), "currency": "USD", **row})
        return out

    @staticmethod
    def _group_usage(results: list[dict[str, Any]], group_by: set[str]) -> list[dict[str, Any]]:
        kept = tuple(d for d in USAGE_DIMENSIONS if d in group_by)
        groups: dict[tuple[Any, ...], dict[str, Any]] = {}
        for result in results:
            key = tuple(result[k] for k in kept)
            into = groups.setdefault(key, {
                **dict.fromkeys(USAGE_COUNTS, 0),
                "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
                "server_tool_use": {"web_search_requests": 0}, **dict.fromkeys(USAGE_DIMENSIONS),
                **dict(zip(kept, key, strict=True))})
            for name in USAGE_COUNTS:
                into[name] += result[name]
            for outer in ("cache_creation", "server_tool_use"):
                for name, value in result[outer].items():
                    into[outer][name] += value
        return list(groups.values())
