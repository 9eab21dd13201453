#!/usr/bin/env python3
"""claude-admin-import: what the organisation was billed, from the Anthropic Admin API, beside the ccusage tables.

ccusage shows what one machine's Claude Code did; the Admin API shows what the organisation was billed, per
workspace, model and API key, and Claude Code's activity per user. This script loads three reports into the same
ClickHouse database as ccusage_importer.py, whose configuration (CH_*, CCUSAGE_IMPORT_DB), storage and lock it
reuses:

    GET /v1/organizations/cost_report              -> claude_api_costs (cents converted to exact dollars)
    GET /v1/organizations/usage_report/messages    -> claude_api_usage (tokens per day) and, for recent days,
                                                      claude_api_usage_hourly (the same per hour)
    GET /v1/organizations/usage_report/claude_code -> claude_code_productivity (no cost column) and
                                                      claude_code_model_usage (tokens, Claude Code's *estimate*)
    per report and UTC day, the import status      -> claude_api_import_days (backfills resume from it)

The code reads in the order a run flows:
    configuration -> source (HTTP: pagination, retry) -> pure transforms (JSON page -> rows) -> plan (which days)
    -> store (the only code that speaks SQL) -> report -> run -> CLI.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import email.utils
import hashlib
import http.client
import json
import os
import random
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ccusage_importer import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_USAGE,
    HERE,
    CheckResult,
    Config,
    EpilogAsWritten,
    OneLineParser,
    Progress,
    ShapeError,
    Store,
    StoreCheck,
    UserError,
    add_run_options,
    help_epilog,
    now,
    number_setting,
    open_store,
    parse_timestamp,
    redact,
    run_check,
    run_lock,
    run_main,
    secret_forms,
    secret_texts,
    utc,
)

__version__ = "1.0.0"

# ----------------------------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------------------------

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
USER_AGENT = f"ccusage-import-claude-admin/{__version__} (claude_admin_importer.py; Python urllib)"
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}

MAX_RETRY_AFTER = 60.0  # seconds: a retry-after of 0, or longer than this, is replaced by the backoff
MAX_BACKOFF = 60.0
SPEND_CAP_ATTEMPTS = 3  # a 429 without retry-after (monthly spend cap) does not clear by waiting
WINDOW_DAYS = 7  # days per cost/usage request: few requests, and a failure touches at most a week
DATE_RANGE = (dt.date(1970, 1, 1), dt.date(2149, 6, 6))  # what ClickHouse's Date type holds
SETTLE = dt.timedelta(hours=1)  # Claude Code data arrives up to an hour late: a day is final an hour after it ends
DEFAULT_DAYS = 3
DEFAULT_HOURLY_DAYS = 7  # a backfill's last days get hourly usage too; older days are 24 buckets and up to 24x
# the rows of their daily usage, for detail nobody looks at
DEFAULT_MAX_DAILY_COST = Decimal(100)
DEFAULT_MAX_TOKEN_DIFFERENCE = Decimal(10)  # % between the local Claude Code tokens and the Claude Code report's


@dataclass(frozen=True)
class AdminConfig:
    """How to reach the Admin API; the key is never printed (repr=False) and redacted from every message."""

    base_url: str
    admin_key: str = field(repr=False)
    timeout: float = 60.0
    max_retries: int = 4
    backoff: float = 1.0
    page_limit: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AdminConfig:
        key = env.get("ANTHROPIC_ADMIN_KEY", "").strip()
        if not key:
            raise UserError("ANTHROPIC_ADMIN_KEY is not set: create an Admin key (sk-ant-admin…) in the Claude Console "
                            "under Settings → Admin keys and export it")
        if not all(33 <= ord(ch) < 127 for ch in key):
            raise UserError("ANTHROPIC_ADMIN_KEY contains spaces or characters that cannot be sent in an HTTP header")
        return cls(
            base_url=check_base_url(env.get("ANTHROPIC_BASE_URL", "").strip() or DEFAULT_BASE_URL, key),
            admin_key=key,
            timeout=number_setting(env, "ANTHROPIC_TIMEOUT"),
            max_retries=number_setting(env, "ANTHROPIC_MAX_RETRIES"),
            backoff=number_setting(env, "ANTHROPIC_RETRY_BACKOFF"),
            page_limit=number_setting(env, "ANTHROPIC_PAGE_LIMIT") or None,
        )

    def redact(self, text: str) -> str:
        return hide(text, self.admin_key)


def hide(text: str, secret: str) -> str:
    """The secret replaced by ***, in every form it can take (error bodies that echo headers, URLs, hex dumps)."""
    return redact(text, secret_forms(secret))


def check_base_url(url: str, key: str = "") -> str:
    """https only (plain http only to this machine), no credentials in it: the Admin key must not leak."""
    shown = hide(url, key)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"ANTHROPIC_BASE_URL={shown!r} is not an http(s) URL such as {DEFAULT_BASE_URL}")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise UserError(f"ANTHROPIC_BASE_URL={shown!r} is plain http: the Admin key would travel unencrypted "
                        "(use https; plain http is accepted only for localhost)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise UserError("ANTHROPIC_BASE_URL must not contain credentials, a query or a fragment")
    return url.rstrip("/")


def lock_path(config: Config) -> Path:
    """The embedded store's own lock (chDB: one process at a time); for a server, a lock of this script's own."""
    if config.embedded:
        return config.lock_path()
    target = f"{config.ch_host}:{config.ch_port}/{config.ch_database}"
    return config.data_dir / f"claude-admin-{hashlib.sha256(target.encode()).hexdigest()[:12]}.lock"


# ----------------------------------------------------------------------------------------------------------------
# Source: the Admin API over HTTPS (stdlib urllib: four GET endpoints need no dependency)
# ----------------------------------------------------------------------------------------------------------------

COST_PATH = "/v1/organizations/cost_report"
USAGE_PATH = "/v1/organizations/usage_report/messages"
CODE_PATH = "/v1/organizations/usage_report/claude_code"
MAX_LIMIT = {COST_PATH: 31, USAGE_PATH: 31, CODE_PATH: 1000}  # documented maxima per page
CODE_MAX_RECORDS = 100_000  # Claude Code records (one per user, terminal and place) a day can hold: a bound on paging
MAX_HOURLY_LIMIT = 168  # documented maximum of 1h buckets per page: a 7-day window in one page
DAY, HOUR = dt.timedelta(days=1), dt.timedelta(hours=1)
BUCKET_WIDTHS = {"1d": DAY, "1h": HOUR}
RETRY_STATUSES = {408, 409, 429}


class ApiError(Exception):
    """A request failed for good. Fatal ones (bad key, spend cap, unreachable) stop the run: every day would fail."""

    def __init__(self, message: str, *, fatal: bool = False):
        super().__init__(message)
        self.fatal = fatal


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would resend the x-api-key header to wherever a redirect points; refuse instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def retry_after(headers: Mapping[str, str], now: dt.datetime | None = None) -> float | None:
    """Seconds asked by retry-after-ms / retry-after (seconds or an HTTP date), as asked; None when absent or
    unparsable. Whether to wait that long is usable_wait's decision."""
    raw_ms = (headers.get("retry-after-ms") or "").strip()
    raw = (headers.get("retry-after") or "").strip()
    seconds: float | None = None
    try:
        if raw_ms:
            seconds = float(raw_ms) / 1000
        elif raw:
            seconds = float(raw)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(raw)
            seconds = (moment - (now or dt.datetime.now(dt.UTC))).total_seconds()
        except (TypeError, ValueError):
            seconds = None
    if seconds is None or seconds != seconds:  # absent, unparsable or NaN
        return None
    return seconds


def usable_wait(asked: float | None) -> float | None:
    """A retry-after worth obeying, or None to back off instead: more than 0 (0 or a past date would retry at once,
    hammering the API) and at most MAX_RETRY_AFTER (a longer wait stalls the run, and a shortened one is no longer
    what the API asked for)."""
    return asked if asked is not None and 0 < asked <= MAX_RETRY_AFTER else None


def backoff_delay(base: float, attempt: int) -> float:
    """Exponential backoff (base, 2·base, 4·base …), capped, with up to 25 % jitter so clients spread out."""
    return min(base * 2 ** (attempt - 1), MAX_BACKOFF) * (1 - 0.25 * random.random())


EXCERPT_CHARS = 60  # of an answer that is not what was asked for: enough to recognise a proxy's page, no dump


def printable(text: str, limit: int) -> str:
    """One line of at most `limit` characters: whitespace runs folded, control characters (a hostile answer's
    terminal escapes or line breaks) shown as ?."""
    folded = "".join(ch if ch.isprintable() else "?" for ch in re.sub(r"\s+", " ", text).strip())
    return folded if len(folded) <= limit else folded[:limit - 1].rstrip() + "…"


def describe_body(reply: Reply, hide: Callable[[str], str]) -> str:
    """`text/html, 1234 bytes: "<html>…"`: what came back, for someone to recognise (a proxy's login page, an
    echo of the request), without printing the body. The secret is removed from the whole body before it is cut,
    so a cut never leaves part of it."""
    kind = printable(hide(reply.headers.get("content-type") or "no content type"), EXCERPT_CHARS)
    if not reply.body:
        return f"{kind}, empty body"
    excerpt = printable(hide(reply.body.decode("utf-8", "replace")), EXCERPT_CHARS)
    return f"{kind}, {len(reply.body)} bytes: \"{excerpt}\""


def error_summary(reply: Reply, hide: Callable[[str], str]) -> str:
    """`HTTP 429 rate_limit_error: message (request req_…)` from a JSON error body, or what the body is."""
    text = hide(reply.body.decode("utf-8", "replace"))
    try:
        body = json.loads(text)
        error = body.get("error") or {}
        kind = printable(hide(str(error.get("type", ""))), EXCERPT_CHARS)
        message = printable(hide(str(error.get("message", ""))), 300)  # hidden again: JSON escapes are decoded now
        summary = f"HTTP {reply.status} {kind}: {message}".rstrip(": ")
        request_id = body.get("request_id") or reply.headers.get("request-id")
    except (ValueError, AttributeError, RecursionError):
        summary = f"HTTP {reply.status} ({describe_body(reply, hide)})"
        request_id = reply.headers.get("request-id")
    if request_id:
        summary += f" (request {printable(hide(str(request_id)), EXCERPT_CHARS)})"
    return summary


def parse_json(reply: Reply, where: str, hide: Callable[[str], str]) -> dict[str, Any]:
    """A 200 answer as a JSON object; numbers with a fraction become Decimal, never float: amounts stay exact.
    Anything else (a proxy's page, an echo of the request) is described, never dumped: it may quote the key."""
    try:
        doc = json.loads(reply.body, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise ShapeError(f"{where}: HTTP 200 but the answer is not JSON ({describe_body(reply, hide)}); a proxy or "
                         "another server answering for ANTHROPIC_BASE_URL?") from None
    if not isinstance(doc, dict):
        raise ShapeError(f"{where}: the answer is not a JSON object ({describe_body(reply, hide)})")
    return doc


class AdminApi:
    """GET requests to the Admin API with the key, a timeout on each, retries with backoff, and pagination."""

    def __init__(self, admin: AdminConfig, sleep: Callable[[float], None] = time.sleep):
        self.admin = admin
        self.sleep = sleep
        self.opener = urllib.request.build_opener(_NoRedirects)
        self.requests = 0
        self.pages_read = 0  # pages of the last (or current) pages() call

    def _send(self, url: str) -> Reply:
        request = urllib.request.Request(url, headers={
            "x-api-key": self.admin.admin_key,
            "anthropic-version": API_VERSION,
            "user-agent": USER_AGENT,
            "accept": "application/json",
        })
        self.requests += 1
        try:
            with self.opener.open(request, timeout=self.admin.timeout) as response:
                return Reply(response.status, response.headers, response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return Reply(exc.code, exc.headers, exc.read())

    def get(self, path: str, params: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """One request with retries: 408/409/429/5xx and network errors are retried, honouring retry-after."""
        url = f"{self.admin.base_url}{path}?{urllib.parse.urlencode(params)}"
        shown = f"GET {path}"
        attempt = 0
        while True:
            attempt += 1
            try:
                reply = self._send(url)
            except (OSError, http.client.HTTPException) as exc:
                timed_out = isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError)
                problem = (f"no answer within {self.admin.timeout:g} s" if timed_out
                           else f"cannot reach {self.admin.base_url}: {getattr(exc, 'reason', exc)}")
                if attempt > self.admin.max_retries:  # one line, even if a server's status line was garbage
                    raise ApiError(printable(self.admin.redact(f"{shown}: {problem} (after {attempt} attempts)"), 400),
                                   fatal=not timed_out) from None
                self.sleep(backoff_delay(self.admin.backoff, attempt))
                continue
            if reply.status == 200:
                return parse_json(reply, shown, self.admin.redact)
            delay = self._retry_delay(shown, reply, attempt)
            self.sleep(delay)

    def _retry_delay(self, shown: str, reply: Reply, attempt: int) -> float:
        """How long to wait before the next attempt, or raise ApiError when this reply is final."""
        summary = error_summary(reply, self.admin.redact)
        status = reply.status
        if 300 <= status < 400:
            target = printable(self.admin.redact(reply.headers.get("location") or "?"), 200)
            raise ApiError(f"{shown}: {summary}: a redirect to {target} was refused (the Admin key is only sent to "
                           "ANTHROPIC_BASE_URL); check ANTHROPIC_BASE_URL", fatal=True)
        if status == 401:
            raise ApiError(f"the Admin API refused ANTHROPIC_ADMIN_KEY ({summary}): it must be an Admin key "
                           "(sk-ant-admin…) of an organisation", fatal=True)
        if status == 403:
            raise ApiError(f"the Admin API denied access ({summary}): the key lacks permission for {shown} "
                           "(Admin keys only; workspace API keys do not work)", fatal=True)
        asked = retry_after(reply.headers)
        if status == 429 and asked is None:
            if attempt >= SPEND_CAP_ATTEMPTS:
                raise ApiError(f"{shown}: {summary} without retry-after, {attempt} attempts: the organisation has "
                               "probably reached its monthly spend cap (it does not clear by waiting); stopped",
                               fatal=True)
            return backoff_delay(self.admin.backoff, attempt)
        should_retry = (reply.headers.get("x-should-retry") or "").strip().lower()
        retryable = should_retry == "true" or (should_retry != "false" and (
            status in RETRY_STATUSES or status >= 500))
        if not retryable or attempt > self.admin.max_retries:
            tries = f" (after {attempt} attempts)" if attempt > 1 else ""
            raise ApiError(f"{shown}: {summary}{tries}")
        wait = usable_wait(asked)
        return wait if wait is not None else backoff_delay(self.admin.backoff, attempt)

    def pages(self, path: str, params: Sequence[tuple[str, str]], most: int,
              on_page: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
        """Every page of a report, as it arrives: the same request (limit and filters kept) plus page=next_page
        while has_more. `most`: the items (buckets, records) the request can hold; an API that pages on past them,
        or sends a page without items that says has_more, is paging forever: stopped with one line (ShapeError)."""
        seen: set[str] = set()
        token: str | None = None
        items = pages = 0
        while True:
            document = self.get(path, [*params, *((("page", token),) if token else ())])
            pages += 1
            if on_page:
                on_page(pages)
            data = document.get("data")
            items += len(data) if isinstance(data, list) else 0
            has_more, token = document.get("has_more"), document.get("next_page")
            self.pages_read = pages
            if items > most or (has_more is True and not data):
                raise ShapeError(f"GET {path}: still has_more after {pages} pages and {items} items, when the request "
                                 f"can hold {most}: the API is paging forever; stopped")
            yield document
            if has_more is False or (has_more is None and token is None):
                return
            if has_more is not True or not isinstance(token, str) or not token:
                raise ShapeError(f"GET {path}: has_more={has_more!r} with next_page={token!r}")
            if token in seen:
                raise ShapeError(f"GET {path}: next_page {token!r} came back twice: the API is paging in a loop")
            seen.add(token)


def rfc3339(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def bucket_params(path: str, first: dt.date, last: dt.date, group_by: Sequence[str],
                  page_limit: int | None, width: str = "1d") -> list[tuple[str, str]]:
    """Daily (or hourly) buckets of the days [first, last]; group_by[] repeated, the documented array encoding."""
    maximum = MAX_HOURLY_LIMIT if width == "1h" else MAX_LIMIT[path]
    return [("starting_at", rfc3339(first)), ("ending_at", rfc3339(last + DAY)), ("bucket_width", width),
            ("limit", str(min(page_limit or maximum, maximum))), *(("group_by[]", g) for g in group_by)]


def code_params(day: dt.date, page_limit: int | None) -> list[tuple[str, str]]:
    return [("starting_at", day.isoformat()), ("limit", str(min(page_limit or MAX_LIMIT[CODE_PATH],
                                                                  MAX_LIMIT[CODE_PATH])))]


# ----------------------------------------------------------------------------------------------------------------
# Pure transforms: JSON pages -> rows (no I/O)
# ----------------------------------------------------------------------------------------------------------------

CENTS_SCALE = 10  # Decimal(38, 10) cents; dollars are Decimal(38, 12): cents / 100 always fits
EXACT = decimal.Context(prec=80, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])
DECIMAL_TEXT = re.compile(r"-?(\d+(\.\d*)?|\.\d+)")


@dataclass(frozen=True)
class TableSpec:
    """A table of natural keys (null dimensions stored as ''), descriptive attributes and additive measures."""

    name: str
    key: tuple[str, ...]
    attributes: tuple[str, ...]
    measures: Mapping[str, Any]  # measure -> its zero
    day_sql: str = "date"  # the UTC day of a row, in SQL: a re-import replaces whole days

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.key, *self.attributes, *self.measures)

    def key_of(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(row[c] for c in self.key)

    def zero_row(self, key: Sequence[Any]) -> dict[str, Any]:
        """What a key that vanished from a re-imported day is set to: zero, so sums stay right."""
        return {**dict(zip(self.key, key, strict=True)), **dict.fromkeys(self.attributes, ""),
                **{m: (dict(z) if isinstance(z, dict) else z) for m, z in self.measures.items()}}


COST_DIMENSIONS = ("workspace_id", "description", "cost_type", "model", "token_type", "service_tier",
                   "context_window", "inference_geo")
USAGE_DIMENSIONS = ("model", "api_key_id", "workspace_id", "service_tier", "context_window")
USAGE_COUNTS: dict[str, tuple[str, ...]] = {
    "uncached_input_tokens": ("uncached_input_tokens",),
    "cache_creation_1h_input_tokens": ("cache_creation", "ephemeral_1h_input_tokens"),
    "cache_creation_5m_input_tokens": ("cache_creation", "ephemeral_5m_input_tokens"),
    "cache_read_input_tokens": ("cache_read_input_tokens",),
    "output_tokens": ("output_tokens",),
    "web_search_requests": ("server_tool_use", "web_search_requests"),
}
CODE_KEY = ("date", "actor_type", "actor_id", "terminal_type", "is_remote")
CODE_MODEL_TOKENS = ("input", "output", "cache_read", "cache_creation")

COSTS = TableSpec("claude_api_costs", ("date", *COST_DIMENSIONS), (),
                  {"amount_cents": Decimal(0), "amount_usd": Decimal(0)})
USAGE = TableSpec("claude_api_usage", ("date", *USAGE_DIMENSIONS), (), dict.fromkeys(USAGE_COUNTS, 0))
USAGE_HOURLY = TableSpec("claude_api_usage_hourly", ("hour", *USAGE_DIMENSIONS), (), dict.fromkeys(USAGE_COUNTS, 0),
                         day_sql="toDate(hour)")
PRODUCTIVITY = TableSpec(
    "claude_code_productivity", CODE_KEY, ("organization_id", "customer_type", "subscription_type"),
    {"num_sessions": 0, "lines_added": 0, "lines_removed": 0, "commits": 0, "pull_requests": 0,
     "tool_accepted": {}, "tool_rejected": {}})
CODE_MODELS = TableSpec(
    "claude_code_model_usage", (*CODE_KEY, "model"), (),
    {**{f"{t}_tokens": 0 for t in CODE_MODEL_TOKENS}, "estimated_cost_usd": Decimal(0)})

HOURLY = "usage_messages_hourly"  # only for the days a run asks hourly usage for (--hourly-days)
REPORTS = ("cost_report", "usage_messages", HOURLY, "claude_code")
REPORT_TABLES: dict[str, tuple[TableSpec, ...]] = {
    "cost_report": (COSTS,), "usage_messages": (USAGE,), HOURLY: (USAGE_HOURLY,),
    "claude_code": (PRODUCTIVITY, CODE_MODELS)}
ALL_SPECS = (COSTS, USAGE, USAGE_HOURLY, PRODUCTIVITY, CODE_MODELS)
STATUS_TABLE = "claude_api_import_days"
FAILED = "failed"  # the latest import failed and nothing of the (report, day) is stored
FAILED_KEPT = "failed_kept"  # the latest import failed; the rows of an earlier ok/partial import are still stored
IMPORTED = ("ok", "partial", FAILED_KEPT)  # statuses whose rows are in the store: --validate counts them as there


def exact_decimal(value: Any, where: str, scale: int = CENTS_SCALE) -> Decimal:
    """A decimal string or JSON number as an exact Decimal; refuses anything that would have to be rounded."""
    if isinstance(value, str) and DECIMAL_TEXT.fullmatch(value.strip()):
        number = Decimal(value.strip())
    elif isinstance(value, int | Decimal) and not isinstance(value, bool):
        number = Decimal(value)
    else:
        raise ShapeError(f"{where}: {value!r} is not a decimal amount")
    if not number.is_finite() or -number.as_tuple().exponent > scale or number.adjusted() >= 38 - scale - 2:
        raise ShapeError(f"{where}: {value!r} does not fit {scale} decimals exactly: refusing to round it")
    return number


def cents_to_usd(cents: Decimal) -> Decimal:
    """Exact: a shift of the decimal point (cents are the lowest currency unit), never float arithmetic."""
    return EXACT.scaleb(cents, -2)


def dimension(obj: Mapping[str, Any], name: str, where: str) -> str:
    """A grouping dimension; null (not grouped, default workspace, Console usage) is stored as ''."""
    value = obj.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ShapeError(f"{where}: {name}={value!r} is not a string")
    return value


def count(obj: Any, path: Sequence[str], where: str) -> int:
    """A non-negative integer at a (possibly nested) path; missing or null is 0."""
    for name in path:
        obj = obj.get(name) if isinstance(obj, dict) else None
    if obj is None:
        return 0
    if isinstance(obj, bool) or not isinstance(obj, int | Decimal) or obj < 0 or obj != int(obj):
        raise ShapeError(f"{where}: {'.'.join(path)}={obj!r} is not a count")
    return int(obj)


def _usd_currency(obj: Mapping[str, Any], where: str) -> None:
    currency = obj.get("currency", "USD")
    if currency != "USD":
        raise ShapeError(f"{where}: currency {currency!r} is not USD; amounts are stored as USD")


def merge_rows(spec: TableSpec, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per natural key: results that share a key are added, never silently replaced by the last one."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = spec.key_of(row)
        if key not in merged:
            merged[key] = row
            continue
        into = merged[key]
        for measure in spec.measures:
            if isinstance(into[measure], dict):
                for name, value in row[measure].items():
                    into[measure][name] = into[measure].get(name, 0) + value
            elif isinstance(into[measure], Decimal):
                into[measure] = EXACT.add(into[measure], row[measure])
            else:
                into[measure] += row[measure]
    return list(merged.values())


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def bucket_label(start: dt.datetime, width: dt.timedelta) -> str:
    return start.date().isoformat() if width == DAY else f"{start:%Y-%m-%d %H:%M}"


def buckets_by_day(documents: Iterable[Mapping[str, Any]], where: str, width: dt.timedelta = DAY
                   ) -> dict[dt.date, dict[dt.datetime, list[dict[str, Any]]]]:
    """The buckets of all pages by UTC day and start; a bucket twice, or one that is not one UTC day (or hour,
    for width=HOUR), is an error."""
    days: dict[dt.date, dict[dt.datetime, list[dict[str, Any]]]] = {}
    for doc in documents:
        data = doc.get("data")
        if not isinstance(data, list):
            raise ShapeError(f"{where}: the answer has no `data` list")
        for bucket in data:
            if not isinstance(bucket, dict):
                raise ShapeError(f"{where}: a bucket is not an object")
            start = parse_timestamp(bucket.get("starting_at"), f"{where} starting_at")
            end = parse_timestamp(bucket.get("ending_at"), f"{where} ending_at")
            if (start - EPOCH) % width or end - start != width:
                raise ShapeError(f"{where}: bucket {bucket.get('starting_at')} … {bucket.get('ending_at')} is not "
                                 f"one UTC {'day' if width == DAY else 'hour'}")
            results = bucket.get("results")
            if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
                raise ShapeError(f"{where}: bucket {bucket_label(start, width)} has no `results` list")
            day = days.setdefault(start.date(), {})
            if start in day:
                raise ShapeError(f"{where}: the bucket of {bucket_label(start, width)} came twice (pages overlap)")
            day[start] = results
    return days


def missing_buckets(day: dt.date, starts: Iterable[dt.datetime], width: dt.timedelta, fetched_at: dt.datetime
                    ) -> list[dt.datetime]:
    """Buckets of `day` an answer lacks. The API sends one per interval, empty ones included, so every bucket of the
    day that began before the request must be there; a day still running has the rest to come."""
    midnight = dt.datetime.combine(day, dt.time(), dt.UTC)
    present = set(starts)
    return [start for start in (midnight + width * n for n in range(DAY // width))
            if start < fetched_at and start not in present]


def cost_rows(day: dt.date, results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """cost_report results of one day: `amount` is cents as a decimal string ("123.78912" = $1.2378912)."""
    where = f"cost_report {day}"
    rows = []
    for result in results:
        _usd_currency(result, where)
        cents = exact_decimal(result.get("amount"), f"{where} amount")
        rows.append({"date": day, **{d: dimension(result, d, where) for d in COST_DIMENSIONS},
                     "amount_cents": cents, "amount_usd": cents_to_usd(cents)})
    return merge_rows(COSTS, rows)


def _usage_rows(spec: TableSpec, bucket: Mapping[str, Any], results: Sequence[Mapping[str, Any]], where: str
                ) -> list[dict[str, Any]]:
    rows = [{**bucket, **{d: dimension(r, d, where) for d in USAGE_DIMENSIONS},
             **{column: count(r, path, where) for column, path in USAGE_COUNTS.items()}} for r in results]
    return merge_rows(spec, rows)


def usage_rows(day: dt.date, results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """usage_report/messages results of one day; cache writes are nested (1h and 5m kept apart)."""
    return _usage_rows(USAGE, {"date": day}, results, f"usage_report/messages {day}")


def usage_hourly_rows(hour: dt.datetime, results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The same results of one hourly bucket, keyed by the hour it starts."""
    return _usage_rows(USAGE_HOURLY, {"hour": hour}, results, f"usage_report/messages {bucket_label(hour, HOUR)}")


def _actor(record: Mapping[str, Any], where: str) -> tuple[str, str]:
    actor = record.get("actor")
    if not isinstance(actor, dict) or not isinstance(actor.get("type"), str):
        raise ShapeError(f"{where}: a record has no actor type")
    for name in ("email_address", "api_key_name", "id", "name"):
        if isinstance(actor.get(name), str) and actor[name]:
            return actor["type"], actor[name]
    raise ShapeError(f"{where}: actor of type {actor['type']!r} has no email_address or api_key_name")


def code_rows(day: dt.date, records: Sequence[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """usage_report/claude_code records of one day -> (productivity rows, per-model token/estimate rows).

    `is_remote` and `subscription_type` are optional ('' when absent); `date` is RFC 3339 or YYYY-MM-DD.
    `estimated_cost.amount` is a number in cents: it goes to estimated_cost_usd only, never next to billed cost.
    """
    where = f"usage_report/claude_code {day}"
    activity, models = [], []
    for record in records:
        if not isinstance(record, dict):
            raise ShapeError(f"{where}: a record is not an object")
        if parse_timestamp(record.get("date"), f"{where} date").date() != day:
            raise ShapeError(f"{where}: a record is dated {record.get('date')!r}")
        actor_type, actor_id = _actor(record, where)
        remote = record.get("is_remote")
        if remote is not None and not isinstance(remote, bool):
            raise ShapeError(f"{where}: is_remote={remote!r} is not true or false")
        key = {"date": day, "actor_type": actor_type, "actor_id": actor_id,
               "terminal_type": dimension(record, "terminal_type", where),
               "is_remote": "" if remote is None else str(remote).lower()}
        metrics = record.get("core_metrics") or {}
        tools = record.get("tool_actions") or {}
        if not isinstance(tools, dict) or not all(isinstance(v, dict) for v in tools.values()):
            raise ShapeError(f"{where}: tool_actions is not a map of tools")
        activity.append({
            **key,
            **{a: dimension(record, a, where) for a in PRODUCTIVITY.attributes},
            "num_sessions": count(metrics, ("num_sessions",), where),
            "lines_added": count(metrics, ("lines_of_code", "added"), where),
            "lines_removed": count(metrics, ("lines_of_code", "removed"), where),
            "commits": count(metrics, ("commits_by_claude_code",), where),
            "pull_requests": count(metrics, ("pull_requests_by_claude_code",), where),
            "tool_accepted": {tool: count(v, ("accepted",), where) for tool, v in tools.items()},
            "tool_rejected": {tool: count(v, ("rejected",), where) for tool, v in tools.items()},
        })
        breakdown = record.get("model_breakdown") or []
        if not isinstance(breakdown, list):
            raise ShapeError(f"{where}: model_breakdown is not a list")
        for item in breakdown:
            if not isinstance(item, dict) or not isinstance(item.get("model"), str):
                raise ShapeError(f"{where}: a model_breakdown item has no model")
            cost = item.get("estimated_cost") or {}
            _usd_currency(cost, where)
            cents = exact_decimal(cost.get("amount", 0), f"{where} estimated_cost")
            models.append({**key, "model": item["model"],
                           **{f"{t}_tokens": count(item, ("tokens", t), where) for t in CODE_MODEL_TOKENS},
                           "estimated_cost_usd": cents_to_usd(cents)})
    return merge_rows(PRODUCTIVITY, activity), merge_rows(CODE_MODELS, models)


def vanished_rows(spec: TableSpec, stored_keys: Iterable[tuple[Any, ...]],
                  rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Zero rows for keys stored earlier that a re-import no longer reports, so a day is replaced, not merged."""
    present = {spec.key_of(row) for row in rows}
    return [spec.zero_row(key) for key in sorted(set(stored_keys) - present)]


# ----------------------------------------------------------------------------------------------------------------
# Plan: which (report, day) pairs a run imports
# ----------------------------------------------------------------------------------------------------------------


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def plan_jobs(days: Iterable[dt.date], statuses: Mapping[tuple[str, dt.date], str], *, mode: str,
              hourly_from: dt.date | None = None) -> dict[dt.date, tuple[str, ...]]:
    """Reports to import per day. mode: 'all' (scheduled run, --force), 'resume' (skip days already ok),
    'failed' (--retry-failed: only what failed, hourly usage included). Hourly usage only from `hourly_from` on
    (None: no day), so a long backfill does not pay 24 buckets a day for its old days."""
    def wanted(report: str, day: dt.date) -> bool:
        status = statuses.get((report, day))
        if mode != "failed" and report == HOURLY and (hourly_from is None or day < hourly_from):
            return False
        return {"all": True, "resume": status != "ok", "failed": status in (FAILED, FAILED_KEPT)}[mode]

    jobs = {}
    for day in sorted(set(days)):
        reports = tuple(r for r in REPORTS if wanted(r, day))
        if reports:
            jobs[day] = reports
    return jobs


def chunk_days(days: Sequence[dt.date], size: int = WINDOW_DAYS) -> list[list[dt.date]]:
    """Sorted days cut into windows spanning at most `size` calendar days (one cost/usage request each)."""
    chunks: list[list[dt.date]] = []
    for day in sorted(days):
        if chunks and (day - chunks[-1][0]).days < size:
            chunks[-1].append(day)
        else:
            chunks.append([day])
    return chunks


def day_status(day: dt.date, imported_at: dt.datetime) -> str:
    """'ok' once the UTC day is over (plus the hour Claude Code data may lag); 'partial' for a day still running."""
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    return "ok" if imported_at >= end + SETTLE else "partial"


def day_ranges(days: Iterable[dt.date], limit: int = 12) -> str:
    """2025-08-01…2025-08-03, 2025-08-07: consecutive days folded, at most `limit` ranges shown."""
    ranges: list[list[dt.date]] = []
    for day in sorted(set(days)):
        if ranges and day - ranges[-1][1] == dt.timedelta(days=1):
            ranges[-1][1] = day
        else:
            ranges.append([day, day])
    text = [f"{a}…{b}" if a != b else str(a) for a, b in ranges[:limit]]
    if len(ranges) > limit:
        text.append(f"and {len(ranges) - limit} more ranges")
    return ", ".join(text)


# ----------------------------------------------------------------------------------------------------------------
# Store: the only code that speaks SQL
# ----------------------------------------------------------------------------------------------------------------


class AdminStore:
    """The Admin API tables inside the importer's store (their schema is part of ccusage_clickhouse_schema.sql)."""

    def __init__(self, store: Store):
        self.store = store
        self.client = store.client

    def statuses(self, first: dt.date | None = None, last: dt.date | None = None
                 ) -> dict[tuple[str, dt.date], tuple[str, str]]:
        """(report, day) -> (status, error_text), the latest import of each."""
        _, rows = self.store.query(
            f"SELECT report, date, status, error_text FROM {STATUS_TABLE} FINAL "
            "WHERE date >= {first:Date} AND date <= {last:Date}",
            {"first": first or DATE_RANGE[0], "last": last or DATE_RANGE[1]})
        return {(report, day): (status, error) for report, day, status, error in rows}

    def stored_keys(self, spec: TableSpec, days: Sequence[dt.date]) -> set[tuple[Any, ...]]:
        """Keys of these days that hold anything (zero rows already mark vanished keys)."""
        nonzero = " OR ".join(f"notEmpty({m})" if isinstance(z, dict) else f"{m} != 0"
                              for m, z in spec.measures.items())
        _, rows = self.store.query(
            f"SELECT {', '.join(spec.key)} FROM {spec.name} FINAL WHERE has({{days:Array(Date)}}, {spec.day_sql}) "
            f"AND ({nonzero})", {"days": list(days)})
        return {tuple(utc(value) for value in row) for row in rows}

    def insert(self, spec: TableSpec, rows: Sequence[Mapping[str, Any]], imported_at: dt.datetime) -> None:
        if rows:
            self.store.insert(spec.name, [[row[c] for c in spec.columns] + [imported_at] for row in rows],
                              [*spec.columns, "imported_at"])

    def record_days(self, results: Sequence[DayResult], imported_at: dt.datetime) -> None:
        """Written after the rows: a run cut short leaves the day un-done, and the next run redoes it."""
        self.store.insert(STATUS_TABLE, [
            [r.report, r.day, r.status(imported_at), r.row_count, r.pages, r.error or "", imported_at]
            for r in results], ["report", "date", "status", "row_count", "pages", "error_text", "imported_at"])

    # -- validation -----------------------------------------------------------------------------------------

    def daily_costs(self, first: dt.date, last: dt.date) -> list[tuple[dt.date, Decimal]]:
        _, rows = self.store.query(
            f"SELECT date, sum(amount_usd) AS usd FROM {COSTS.name} FINAL "
            "WHERE date >= {first:Date} AND date <= {last:Date} GROUP BY date ORDER BY date",
            {"first": first, "last": last})
        return [(day, Decimal(usd)) for day, usd in rows]

    def imported_range(self) -> tuple[dt.date, dt.date] | None:
        _, rows = self.store.query(f"SELECT count(), min(date), max(date) FROM {STATUS_TABLE} FINAL")
        total, first, last = rows[0]
        return (first, last) if total else None

    def engines(self, tables: Sequence[str]) -> dict[str, str]:
        _, rows = self.store.query(
            "SELECT name, engine FROM system.tables WHERE database = {db:String} AND has({names:Array(String)}, name)",
            {"db": self.store.config.ch_database, "names": list(tables)})
        return dict(rows)

    @staticmethod
    def final(engine: str) -> str:
        """FINAL where the engine has it: a table swapped for a plain MergeTree is reported, not a crash."""
        return "FINAL" if engine.startswith("Replacing") else ""

    def duplicate_keys(self) -> dict[str, tuple[str, int, int]]:
        """Per table: engine, rows as read (FINAL on a Replacing engine) and distinct natural keys."""
        keys = {spec.name: spec.key for spec in ALL_SPECS} | {STATUS_TABLE: ("report", "date")}
        found = {}
        for table, engine in self.engines(list(keys)).items():
            _, rows = self.store.query(f"SELECT count(), uniqExact(tuple({', '.join(keys[table])})) "
                                       f"FROM {table} {self.final(engine)}")
            found[table] = (engine, int(rows[0][0]), int(rows[0][1]))
        return found

    def hourly_mismatches(self, days: Sequence[dt.date]) -> dict[dt.date, int]:
        """Per day of `days`, the keys whose hourly rows do not add up to their daily row, in any measure."""
        engines = self.engines([USAGE.name, USAGE_HOURLY.name])
        dims, measures = ", ".join(USAGE_DIMENSIONS), ", ".join(USAGE.measures)
        differs = " OR ".join(f"sumIf({m}, hourly) != sumIf({m}, NOT hourly)" for m in USAGE.measures)
        sides = " UNION ALL ".join(
            f"SELECT {spec.day_sql} AS day, {dims}, {measures}, {int(spec is USAGE_HOURLY)} AS hourly "
            f"FROM {spec.name} {self.final(engines.get(spec.name, ''))} "
            f"WHERE has({{days:Array(Date)}}, {spec.day_sql})" for spec in (USAGE, USAGE_HOURLY))
        _, rows = self.store.query(
            f"SELECT day, countIf(differs) AS keys FROM (SELECT day, {dims}, ({differs}) AS differs "
            f"FROM ({sides}) GROUP BY day, {dims}) GROUP BY day HAVING keys > 0 ORDER BY day", {"days": list(days)})
        return {day: int(keys) for day, keys in rows}

    def claude_code_tokens(self, days: Sequence[dt.date]) -> dict[dt.date, tuple[int, int]]:
        """Per day of `days` with either: Claude Code's tokens as ccusage counted them on every machine (agent
        claude), and as the Admin API's Claude Code report counts them."""
        _, rows = self.store.query(
            "SELECT date, sum(local) AS local_tokens, sum(reported) AS reported_tokens FROM ("
            "SELECT date, total_tokens AS local, toUInt64(0) AS reported FROM ccusage_usage_daily FINAL "
            "WHERE agent = 'claude' AND has({days:Array(Date)}, date) "
            "UNION ALL SELECT date, toUInt64(0), "
            "input_tokens + output_tokens + cache_read_tokens + cache_creation_tokens "
            f"FROM {CODE_MODELS.name} FINAL WHERE has({{days:Array(Date)}}, date)"
            ") GROUP BY date HAVING local_tokens > 0 OR reported_tokens > 0 ORDER BY date", {"days": list(days)})
        return {day: (int(local), int(reported)) for day, local, reported in rows}

    def cost_columns(self, table: str = PRODUCTIVITY.name) -> list[str]:
        _, rows = self.store.query(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = {table:String} "
            "AND positionCaseInsensitive(name, 'cost') > 0 ORDER BY position",
            {"db": self.store.config.ch_database, "table": table})
        return [name for (name,) in rows]


@contextmanager
def admin_store(config: Config, purpose: str) -> Iterator[AdminStore]:
    """The store under the lock, for as short as possible: an hourly ccusage import can run between windows."""
    with run_lock(lock_path(config), config.lock_timeout, purpose):
        store = open_store(config)  # the journal of ccusage imports filed too: its days are compared here
        try:
            yield AdminStore(store)
        finally:
            store.close()


# ----------------------------------------------------------------------------------------------------------------
# Report: what the user sees
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class DayResult:
    """One report of one day: its rows per table, or why it failed."""

    report: str
    day: dt.date
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pages: int = 0
    error: str | None = None
    kept: bool = False  # failed, but the rows of an earlier import of the day are still stored

    @property
    def row_count(self) -> int:
        return sum(len(rows) for rows in self.rows.values())

    def status(self, imported_at: dt.datetime) -> str:
        """What claude_api_import_days records: a failure says whether the store still holds an earlier import."""
        if self.error:
            return FAILED_KEPT if self.kept else FAILED
        return day_status(self.day, imported_at)


def money(value: Decimal) -> str:
    return f"${value:,.2f}"


def _sum(rows: Iterable[Mapping[str, Any]], column: str) -> Decimal:
    total = Decimal(0)
    for row in rows:
        total = EXACT.add(total, row[column])
    return total


def day_line(day: dt.date, results: Sequence[DayResult], imported_at: dt.datetime) -> str:
    """`2025-08-01 ok: cost_report 12 rows ($45.67 billed), usage_messages 30 rows, claude_code 4+6 rows`."""
    parts, failed = [], [r for r in results if r.error]
    for result in results:
        if result.error:
            continue
        sizes = "+".join(str(len(result.rows[spec.name])) for spec in REPORT_TABLES[result.report])
        extra = f" ({money(_sum(result.rows[COSTS.name], 'amount_usd'))} billed)" if result.report == "cost_report" \
            else ""
        parts.append(f"{result.report} {sizes} rows{extra}")
    pieces = [", ".join(parts)] if parts else []
    pieces += [f"❌ {r.report}{' (last re-import failed, earlier data kept)' if r.kept else ''}: {r.error}"
               for r in failed]
    return f"{day} {'failed' if failed else day_status(day, imported_at)}: " + "; ".join(pieces)


def render_validation(flags: Sequence[tuple[bool, str]]) -> str:
    return "\n".join(f"{'✗' if raised else '✓'} {text}" for raised, text in flags)


# ----------------------------------------------------------------------------------------------------------------
# The runs
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class RunOutcome:
    results: list[DayResult] = field(default_factory=list)
    stopped: str | None = None  # the fatal error that ended the run early
    not_attempted: list[dt.date] = field(default_factory=list)

    @property
    def failed_days(self) -> list[dt.date]:
        return sorted({r.day for r in self.results if r.error})


class AdminImporter:
    """Fetches windows of days (no lock held), then writes each window under the store's lock."""

    def __init__(self, config: Config, api: AdminApi, *, quiet: bool = False,
                 now: Callable[[], dt.datetime] = now):
        self.config = config
        self.api = api
        self.quiet = quiet
        self.now = now
        self.progress = Progress(not quiet)

    def reason(self, exc: Exception) -> str:
        """Why a day or the run failed, as printed and stored in error_text: every error passes here, so an answer
        that quotes the key in any encoding (an echoing proxy, a transform quoting a value) never leaves."""
        return self.api.admin.redact(str(exc))

    def say(self, text: str) -> None:
        if not self.quiet:
            self.progress.done()
            print(text, flush=True)

    def run(self, jobs: Mapping[dt.date, tuple[str, ...]]) -> RunOutcome:
        outcome = RunOutcome()
        total, done = len(jobs), 0
        for chunk in chunk_days(list(jobs)):
            results: dict[tuple[str, dt.date], DayResult] = {}
            try:
                for spec in BUCKET_REPORTS:
                    days = [d for d in chunk if spec.report in jobs[d]]
                    if days:
                        results.update(self._fetch_buckets(spec, days, done, total))
                for number, day in enumerate(chunk):
                    if "claude_code" in jobs[day]:
                        results["claude_code", day] = self._fetch_code(day, done + number, total)
            except ApiError as exc:
                outcome.stopped = self.reason(exc)
            complete = [d for d in chunk if all((r, d) in results for r in jobs[d])]
            if results:
                self._write(chunk, complete, [r for r in results.values() if r.day in complete], outcome)
            done += len(chunk)
            if outcome.stopped:
                outcome.not_attempted = [d for d in jobs if d >= chunk[0] and d not in complete]
                break
        self.progress.done()
        return outcome

    def _fetch_buckets(self, spec: BucketReport, days: Sequence[dt.date], done: int, total: int
                       ) -> dict[tuple[str, dt.date], DayResult]:
        """One request (all its pages) for the window's days; a day's bucket (or hour) missing fails that day."""
        report, path, width = spec.report, spec.path, BUCKET_WIDTHS[spec.width]
        label = f"[{done}/{total} days] {report} {days[0]}…{days[-1]}"
        fetched_at = self.now()
        try:
            params = bucket_params(path, days[0], days[-1], spec.group_by, self.api.admin.page_limit, spec.width)
            most = ((days[-1] - days[0]).days + 1) * (DAY // width)
            documents = self.api.pages(path, params, most, lambda n: self.progress.update(f"{label} page {n}"))
            by_day = buckets_by_day(documents, f"GET {path}", width)  # overlapping pages stop it as they arrive
            pages = self.api.pages_read
        except (ApiError, ShapeError) as exc:
            if isinstance(exc, ApiError) and exc.fatal:
                raise
            return {(report, d): DayResult(report, d, error=self.reason(exc)) for d in days}
        results = {}
        for day in days:
            buckets = by_day.get(day, {})
            missing = missing_buckets(day, buckets, width, fetched_at)
            if missing:
                what = f"no bucket for {day}" if width == DAY else \
                    f"{len(missing)} hourly bucket(s) of {day} missing (first {missing[0]:%H:%M})"
                results[report, day] = DayResult(report, day, pages=pages, error=(
                    f"GET {path}: {what} in {pages} page(s)"))
                continue
            try:
                results[report, day] = DayResult(report, day, {REPORT_TABLES[report][0].name: spec.rows(buckets)},
                                                 pages)
            except ShapeError as exc:
                results[report, day] = DayResult(report, day, pages=pages, error=self.reason(exc))
        return results

    def _fetch_code(self, day: dt.date, done: int, total: int) -> DayResult:
        """All pages of one day's Claude Code records."""
        label = f"[{done}/{total} days] claude_code {day}"
        try:
            documents = self.api.pages(CODE_PATH, code_params(day, self.api.admin.page_limit), CODE_MAX_RECORDS,
                                       lambda n: self.progress.update(f"{label} page {n}"))
            records = []
            first_page: dict[str, int] = {}  # each record as JSON -> the page it came on
            for page, doc in enumerate(documents, 1):
                if not isinstance(doc.get("data"), list):
                    raise ShapeError(f"GET {CODE_PATH}: the answer has no `data` list")
                for record in doc["data"]:
                    if first_page.setdefault(json.dumps(record, sort_keys=True, default=str), page) != page:
                        raise ShapeError(f"GET {CODE_PATH}: a record of {day} came again on page {page} (pages "
                                         "overlap): it would be counted twice")
                records.extend(doc["data"])
            activity, models = code_rows(day, records)
        except (ApiError, ShapeError) as exc:
            if isinstance(exc, ApiError) and exc.fatal:
                raise
            return DayResult("claude_code", day, error=self.reason(exc))
        return DayResult("claude_code", day, {PRODUCTIVITY.name: activity, CODE_MODELS.name: models},
                         self.api.pages_read)

    def _write(self, chunk: Sequence[dt.date], days: Sequence[dt.date], results: Sequence[DayResult],
               outcome: RunOutcome) -> None:
        """Rows (with zero rows for vanished keys) first, then the days' status, in one short store session."""
        imported_at = self.now()
        self.progress.update(f"writing {chunk[0]}…{chunk[-1]}")
        with admin_store(self.config, "Admin API import") as store:
            failed = [r for r in results if r.error]
            if failed:  # read under the lock that guards the write: what is stored now, not at plan time
                earlier = store.statuses(chunk[0], chunk[-1])
                for result in failed:
                    result.kept = earlier.get((result.report, result.day), ("",))[0] in IMPORTED
            for spec in ALL_SPECS:
                written = [r for r in results if not r.error and spec.name in r.rows]
                if not written:
                    continue
                rows = [row for r in written for row in r.rows[spec.name]]
                stored = store.stored_keys(spec, sorted({r.day for r in written}))
                store.insert(spec, rows + vanished_rows(spec, stored, rows), imported_at)
            if results:
                store.record_days(results, imported_at)
        outcome.results.extend(results)
        for day in days:
            self.say(day_line(day, [r for r in results if r.day == day], imported_at))


@dataclass(frozen=True)
class BucketReport:
    """A report read in time buckets: one request (and its pages) per window of days."""

    report: str
    path: str
    group_by: tuple[str, ...]
    width: str  # bucket_width
    transform: Callable[[Any, Sequence[Mapping[str, Any]]], list[dict[str, Any]]]  # (date or hour, results) -> rows

    def rows(self, buckets: Mapping[dt.datetime, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
        """Rows of one day's buckets: daily rows are keyed by the date, hourly ones by the hour."""
        return [row for start, results in sorted(buckets.items())
                for row in self.transform(start.date() if self.width == "1d" else start, results)]


BUCKET_REPORTS = (
    BucketReport("cost_report", COST_PATH, ("workspace_id", "description"), "1d", cost_rows),
    BucketReport("usage_messages", USAGE_PATH, USAGE_DIMENSIONS, "1d", usage_rows),
    BucketReport(HOURLY, USAGE_PATH, USAGE_DIMENSIONS, "1h", usage_hourly_rows),
)


def summarize(outcome: RunOutcome) -> str:
    """The closing line: days, billed cost, and Claude Code's estimate named as such (never added to billed)."""
    done = [r for r in outcome.results if not r.error]
    days = sorted({r.day for r in outcome.results})
    if not days:
        return "No day imported."
    billed = _sum((row for r in done for row in r.rows.get(COSTS.name, [])), "amount_usd")
    estimate = _sum((row for r in done for row in r.rows.get(CODE_MODELS.name, [])), "estimated_cost_usd")
    return (f"{len(days)} day(s) {days[0]}…{days[-1]}, {len(outcome.failed_days)} failed. Billed (cost_report): "
            f"{money(billed)}. Claude Code's own estimate: {money(estimate)} (part of the billed cost when Claude "
            "Code uses API keys: never add the two).")


def validate(store: AdminStore, first: dt.date | None, last: dt.date | None, max_daily_cost: Decimal,
             max_token_difference: Decimal = DEFAULT_MAX_TOKEN_DIFFERENCE) -> list[tuple[bool, str]] | None:
    """The red flags of broken Admin API imports, each as (raised, explanation); the last one compares the local
    Claude Code tokens with the Claude Code report's. None before the first import: a new setup, not a broken one
    (--validate and --check both say NOTHING_IMPORTED as a warning)."""
    imported = store.imported_range()
    if first is None:
        if imported is None:
            return None
        first = imported[0]
    if last is None:
        last = max(imported[1], first) if imported else first
    flags: list[tuple[bool, str]] = []

    costs = store.daily_costs(first, last)
    high = [(day, usd) for day, usd in costs if usd > max_daily_cost]
    total = _sum(({"usd": usd} for _, usd in costs), "usd")
    if high:
        shown = ", ".join(f"{day} {money(usd)}" for day, usd in sorted(high, key=lambda x: -x[1])[:5])
        flags.append((True, f"daily billed cost above {money(max_daily_cost)} on {len(high)} day(s): {shown} — "
                            "amounts read as dollars instead of cents? (raise --max-daily-cost if real)"))
    else:
        peak = max(costs, key=lambda x: x[1], default=None)
        flags.append((False, f"daily billed cost at most {money(max_daily_cost)}: highest "
                             f"{f'{money(peak[1])} on {peak[0]}' if peak else 'none'}, {money(total)} over "
                             f"{first}…{last}"))

    statuses = store.statuses(first, last)
    days = days_between(first, last)
    hourly = [d for d in days if (HOURLY, d) in statuses]  # asked for only on recent days: expected where asked
    missing, kept = [], []
    for report in REPORTS:
        expected = [(d, statuses.get((report, d), ("",))[0]) for d in (hourly if report == HOURLY else days)]
        lost = [d for d, status in expected if status not in IMPORTED]
        if lost:
            failed = [d for d in lost if (report, d) in statuses]
            missing.append(f"{report}: {len(lost)} day(s) {day_ranges(lost)}"
                           + (f" ({len(failed)} failed)" if failed else ""))
        stale = [d for d, status in expected if status == FAILED_KEPT]
        if stale:
            kept.append(f"{report} {len(stale)} day(s) {day_ranges(stale)}")
    note = f"; last re-import failed, earlier data kept: {', '.join(kept)} (--retry-failed)" if kept else ""
    flags.append((True, "days missing in " + f"{first}…{last}: " + "; ".join(missing) + note) if missing else
                 (False, f"no day missing in {first}…{last} ({len(days)} days, 3 daily reports; hourly usage on "
                         f"{len(hourly)} of them){note}"))

    problems = []
    for table, (engine, rows, keys) in sorted(store.duplicate_keys().items()):
        if not engine.startswith("Replacing"):
            problems.append(f"{table} is a {engine}, so a re-import adds rows instead of replacing them")
        if rows != keys:
            problems.append(f"{table}: {rows - keys} duplicate natural key(s) ({rows} rows, {keys} keys)")
    flags.append((True, "duplicates: " + "; ".join(problems)) if problems else
                 (False, "no duplicate natural keys (count() FINAL = distinct keys in every Admin API table)"))

    columns = store.cost_columns()
    flags.append((True, f"cost column(s) in {PRODUCTIVITY.name}: {', '.join(columns)} — summing them with billed "
                        "cost counts Claude Code twice") if columns else
                 (False, f"no cost column in {PRODUCTIVITY.name} (Claude Code's estimate lives only in "
                         f"{CODE_MODELS.name}.estimated_cost_usd)"))

    flags.append(hourly_flag(store, [d for d in hourly if all(
        statuses.get((report, d), ("",))[0] == "ok" for report in ("usage_messages", HOURLY))]))
    flags.append(token_flag(store, [d for d in days if statuses.get(("claude_code", d), ("",))[0] == "ok"],
                            max_token_difference))
    return flags


def hourly_flag(store: AdminStore, days: Sequence[dt.date]) -> tuple[bool, str]:
    """On finished days imported both ways, the hourly rows must add up to the daily rows, key by key: an hourly
    page lost (or a day restated between the two imports) shows here."""
    if not days:
        return False, "hourly usage: no finished day imported both hourly and daily to compare"
    differing = store.hourly_mismatches(days)
    if not differing:
        return False, (f"hourly usage adds up to daily usage, key by key, on the {len(days)} finished day(s) imported "
                       "both ways")
    shown = ", ".join(f"{day} ({keys} key(s))" for day, keys in list(differing.items())[:5])
    first = min(differing)
    return True, (f"hourly usage does not add up to daily usage on {len(differing)} of {len(days)} day(s): {shown} "
                  f"— an hourly page lost, or data restated between the imports (re-import: --since {first} "
                  f"--until {max(differing)} --force --hourly-days {(max(differing) - first).days + 1})")


def token_flag(store: AdminStore, days: Sequence[dt.date], max_difference: Decimal) -> tuple[bool, str]:
    """On the finished days where both have tokens, the local Claude Code tokens (every machine) against the Claude
    Code report's, in % of the report's: machines that stopped importing, users whose machines never import, or a
    parser that lost lines show here. Days with one side only are not compared (nothing to compare with)."""
    tokens = store.claude_code_tokens(days)
    both = {day: (local, reported) for day, (local, reported) in tokens.items() if local and reported}
    limit = f"{max_difference.normalize():f} %"
    notes = []
    if len(both) < len(tokens):
        notes.append(f"{len(tokens) - len(both)} day(s) with only one of them not compared")
    timezone = store.store.config.timezone
    if both and any(dt.datetime(max(days).year, month, 1, tzinfo=ZoneInfo(timezone)).utcoffset()
                    for month in (1, 7)):
        notes.append(f"local days are {timezone} days, the report's are UTC days")
    note = "".join(f"; {text}" for text in notes)
    if not both:
        return False, f"Claude Code tokens: no finished day with both local tokens and the Claude Code report{note}"
    differences = {day: Decimal(100 * (local - reported)) / reported for day, (local, reported) in both.items()}
    over = [day for day, (local, reported) in both.items() if abs(local - reported) * 100 > max_difference * reported]
    if not over:
        largest = max(differences, key=lambda day: (abs(differences[day]), day))
        return False, (f"local Claude Code tokens within {limit} of the Claude Code report on the {len(both)} "
                       f"finished day(s) with both (largest difference {differences[largest]:+.2f} % on {largest})"
                       f"{note}")
    shown = ", ".join(f"{day} {differences[day]:+.2f} % ({both[day][0]:,} local, {both[day][1]:,} reported)"
                      for day in over[:5])
    return True, (f"local Claude Code tokens differ from the Claude Code report by more than {limit} on "
                  f"{len(over)} of {len(both)} finished day(s): {shown}{' …' if len(over) > 5 else ''} — a machine "
                  f"that does not import, other users of the organisation, or a local import behind? (raise "
                  f"--max-token-difference if expected){note}")


# ----------------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------------


def _date_arg(text: str) -> dt.date:
    """A day the tables' Date columns can hold (DATE_RANGE), else argparse's one-line usage error."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None
    if not DATE_RANGE[0] <= day <= DATE_RANGE[1]:
        raise argparse.ArgumentTypeError(f"{text} is outside {DATE_RANGE[0]}…{DATE_RANGE[1]}, the days a Date column "
                                         "holds")
    return day


def _amount_arg(what: str) -> Callable[[str], Decimal]:
    """An argparse type for a decimal of zero or more (dollars, a percentage), refused with what it should be."""
    def parse(text: str) -> Decimal:
        try:
            value = Decimal(text)
        except decimal.InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite() or value < 0:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="claude_admin_importer.py",
        description="Import the Anthropic Admin API's cost, usage and Claude Code reports into the ccusage-import "
                    f"database. Without arguments: re-import the last {DEFAULT_DAYS} days (late data is restated).",
        formatter_class=EpilogAsWritten,
        epilog=help_epilog((
            ("ANTHROPIC_ADMIN_KEY", "an Admin key (sk-ant-admin…, Claude Console: Settings → Admin keys); "
                                    "required to import"),
            ("ANTHROPIC_BASE_URL", f"the API root (default {DEFAULT_BASE_URL}); the key is sent there"),
            ("CH_HOST, CCUSAGE_IMPORT_DB", "where to store, as for ccusage_importer.py (default: its embedded store)"),
        ), ((EXIT_OK, "every day imported; --validate, --check: nothing failed (warnings allowed)"),
            (EXIT_FAILED, "a day failed, the run stopped (key, spend cap, network), a red flag, or the database"),
            (EXIT_USAGE, "bad usage"),
            (EXIT_LOCKED, "the store's lock was not free within the lock timeout"),
            (EXIT_INTERRUPTED, "interrupted; days written so far are kept")),
            f"{HERE / 'docs' / 'admin-api.md'}"))
    parser.add_argument("--days", type=int, metavar="N",
                        help=f"re-import the last N UTC days including today (default {DEFAULT_DAYS})")
    parser.add_argument("--since", type=_date_arg, metavar="YYYY-MM-DD",
                        help="backfill from this UTC day, day by day; days already imported are skipped")
    parser.add_argument("--until", type=_date_arg, metavar="YYYY-MM-DD",
                        help="last day of --since (default: today, UTC)")
    parser.add_argument("--hourly-days", type=int, metavar="N",
                        help="also import hourly token usage for the last N days of the run (default: all days of a "
                             f"scheduled run, the last {DEFAULT_HOURLY_DAYS} of a --since backfill; 0: none)")
    parser.add_argument("--force", action="store_true", help="with --since: import again days already imported")
    parser.add_argument("--retry-failed", action="store_true",
                        help="re-run only the days (and reports) whose last import failed (within --since/--until)")
    parser.add_argument("--validate", action="store_true",
                        help="check the stored data for the red flags of broken imports (no API call); exit 1 if any")
    parser.add_argument("--max-daily-cost", type=_amount_arg("an amount in dollars"), default=DEFAULT_MAX_DAILY_COST,
                        metavar="USD",
                        help="--validate flags a day billed more than this (default 100: the cents-as-dollars bug)")
    parser.add_argument("--max-token-difference", type=_amount_arg("a percentage"),
                        default=DEFAULT_MAX_TOKEN_DIFFERENCE,
                        metavar="PCT",
                        help="--validate flags a day whose local Claude Code tokens (all machines) differ from the "
                             "Claude Code report's by more than this many %% of them (default 10)")
    parser.add_argument("--check", action="store_true",
                        help="ccusage_importer.py's --check plus the --validate red flags as one line; exit 1 if any "
                             "check fails")
    add_run_options(parser)
    parser.add_argument("--version", action="version", version=f"claude-admin-import {__version__}")
    return parser


def check_arguments(args: argparse.Namespace, today: dt.date) -> None:
    """Combinations argparse cannot express; every problem is one line and exit 2."""
    def refuse(message: str) -> None:
        raise UserError(message, EXIT_USAGE)

    if args.days is not None and (args.since or args.until or args.retry_failed or args.validate):
        refuse("--days is the scheduled run: it does not combine with --since, --until, --retry-failed or --validate")
    if args.days is not None and not 1 <= args.days <= 366:
        refuse("--days must be between 1 and 366")
    if args.until and not args.since:
        refuse("--until needs --since")
    if args.since and args.since > (args.until or today):
        refuse(f"--since {args.since} is after {'--until ' + str(args.until) if args.until else 'today (UTC)'}")
    if args.until and args.until > today:
        refuse(f"--until {args.until} is after today ({today}, UTC)")
    if args.hourly_days is not None and (args.retry_failed or args.validate):
        refuse("--hourly-days goes with a scheduled run or --since (--retry-failed re-runs failed hourly days too)")
    if args.hourly_days is not None and args.hourly_days < 0:
        refuse("--hourly-days must be 0 or more")
    if args.force and not args.since:
        refuse("--force goes with --since (a scheduled run always re-imports its days)")
    if args.retry_failed and (args.force or args.validate):
        refuse("--retry-failed does not combine with --force or --validate")


def run_validation(config: Config, args: argparse.Namespace) -> int:
    with admin_store(config, "Admin API validation") as store:
        flags = validate(store, args.since, args.until, args.max_daily_cost, args.max_token_difference)
    if flags is None:
        if not args.quiet:
            print(f"⚠ {NOTHING_IMPORTED}: {FIRST_IMPORT_FIX}")
        return EXIT_OK
    raised = [text for up, text in flags if up]
    if not args.quiet or raised:
        print(render_validation(flags))
    if raised:
        print(f"error: {len(raised)} red flag(s) in the Admin API data", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def run_range(args: argparse.Namespace, today: dt.date
              ) -> tuple[dt.date | None, dt.date | None, str, dt.date | None]:
    """The run's days (first, last), its plan mode, and its first day of hourly usage: every day of a scheduled
    run, the last DEFAULT_HOURLY_DAYS of a backfill, or the last --hourly-days N (0: none)."""
    if args.retry_failed:
        return args.since, args.until or (today if args.since else None), "failed", None
    if args.since:
        first, last, mode, hourly = args.since, args.until or today, "all" if args.force else "resume", \
            DEFAULT_HOURLY_DAYS
    else:
        hourly = args.days or DEFAULT_DAYS
        first, last, mode = today - dt.timedelta(days=hourly - 1), today, "all"
    hourly = min(hourly if args.hourly_days is None else args.hourly_days, (last - first).days + 1)
    return first, last, mode, last - dt.timedelta(days=hourly - 1) if hourly else None


def run_import(config: Config, admin: AdminConfig, args: argparse.Namespace, today: dt.date) -> int:
    first, last, mode, hourly_from = run_range(args, today)
    with admin_store(config, "Admin API plan") as store:
        statuses = {k: v[0] for k, v in store.statuses(first, last).items()}
    days = sorted({d for _, d in statuses}) if mode == "failed" else days_between(first, last)
    jobs = plan_jobs(days, statuses, mode=mode, hourly_from=hourly_from)
    if not args.quiet:
        print(f"claude-admin-import {__version__}: {admin.base_url} → {config.store_description()}")
        if not jobs:
            print("No failed day to retry." if mode == "failed" else
                  "Nothing to import: every day in the range is already imported (use --force to import again).")
    outcome = AdminImporter(config, AdminApi(admin), quiet=args.quiet).run(jobs)
    if not args.quiet and jobs:
        print(summarize(outcome))
    failed_reports = {d: [r.report + (": earlier data kept" if r.kept else "") for r in outcome.results
                          if r.day == d and r.error] for d in outcome.failed_days}
    failures = [f"{d} ({', '.join(reports)})" for d, reports in failed_reports.items()]
    if outcome.stopped:
        rest = f"; {len(outcome.not_attempted)} day(s) not imported: {day_ranges(outcome.not_attempted)}" \
            if outcome.not_attempted else ""
        print(f"error: {outcome.stopped}{rest}", file=sys.stderr)
        return EXIT_FAILED
    if failures:
        first_error = next(r.error for r in outcome.results if r.error)
        print(f"error: {len(failures)} day(s) failed: {', '.join(failures)} (first: {first_error}); "
              "run again with --retry-failed", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def check_admin_data(store: Store) -> CheckResult:
    """The red flags of --validate on the stored Admin API data, as a line of --check. Local tokens that differ
    from the Claude Code report alone only warn: a team whose machines do not all import differs every day."""
    flags = validate(AdminStore(store), None, None, DEFAULT_MAX_DAILY_COST)
    if flags is None:
        return CheckResult("warn", "Admin API data", NOTHING_IMPORTED, FIRST_IMPORT_FIX)
    raised = [text for up, text in flags if up]
    if not raised:
        return CheckResult("ok", "Admin API data", f"{len(flags)} validations clean: " + "; ".join(
            text for _, text in flags[:1]))
    if raised == [flags[-1][1]]:
        return CheckResult("warn", "Admin API data", raised[0], VALIDATE_FIX)
    return CheckResult("fail", "Admin API data", "; ".join(raised), VALIDATE_FIX)


NOTHING_IMPORTED = "nothing imported from the Admin API yet"
FIRST_IMPORT_FIX = ("export ANTHROPIC_ADMIN_KEY (an Admin key, sk-ant-admin…, from the Claude Console: Settings → "
                    "Admin keys), then run `uv run claude_admin_importer.py`")
VALIDATE_FIX = "run `uv run claude_admin_importer.py --validate` for details (docs/admin-api.md)"
ADMIN_DATA_CHECK = StoreCheck("Admin API data", check_admin_data, VALIDATE_FIX)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = dict(os.environ if env is None else env)
    hidden = secret_texts(env)

    def body() -> int:
        if args.check:
            return run_check(env, args, (ADMIN_DATA_CHECK,))
        config = Config.from_env(env, args)
        today = now().date()
        check_arguments(args, today)
        if args.validate:
            return run_validation(config, args)
        return run_import(config, AdminConfig.from_env(env), args, today)

    return run_main(body, lambda text: redact(text, hidden),
                    "interrupted (days written so far are kept; run the same command again to resume)")


if __name__ == "__main__":
    sys.exit(main())
