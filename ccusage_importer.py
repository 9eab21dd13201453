#!/usr/bin/env python3
"""ccusage-import: keep the whole Claude Code usage history of every machine in ClickHouse.

Claude Code deletes its transcripts after ~30 days; `ccusage` reports on what is left. This tool runs ccusage
(hourly, from cron), turns its JSON reports into rows and writes them, per machine, into ClickHouse tables that
never lose history: a period that ccusage recomputes from fewer files never replaces what is stored.

The code reads top to bottom in the order a run flows:
    configuration -> source (ccusage) -> pure transforms (JSON to rows) -> plan (compare with stored rows)
    -> store (the only code that speaks SQL) -> report (summary) -> ClickHouseImporter (drives a run),
then what else the CLI offers on the same parts: named queries (--query), preflight (--check), the HTML
dashboard (--dashboard), and the command line itself. claude_admin_importer.py reuses configuration and store.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import contextlib
import csv
import dataclasses
import datetime as dt
import fcntl
import hashlib
import hmac
import io
import itertools
import json
import logging
import math
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
import uuid
import zoneinfo
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, NoReturn, Protocol

__version__ = "1.0.0"

HERE = Path(__file__).resolve().parent
SCHEMA_FILE = HERE / "ccusage_clickhouse_schema.sql"
MIGRATIONS_DIR = HERE / "migrations"
QUERIES_FILE = HERE / "queries.sql"

DEFAULT_CCUSAGE_VERSION = "20.0.24"
CLAUDE = "claude"  # ccusage's name for Claude Code: the agent with projects, transcripts and 5-hour blocks
NATIVE_PORTS = {9000: "9000 (native)", 9440: "9440 (native over TLS)"}
HTTPS_PORTS = {443, 8443}

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 3
EXIT_BUDGET = 4  # --alerts: a budget is exceeded
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


class UserError(Exception):
    """An expected failure (bad configuration, missing tool, database down): one line, no traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED):
        super().__init__(message)
        self.exit_code = exit_code


# ----------------------------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NumberSetting:
    """A numeric setting's default and the range it must be in (`unit` and `note` say what it counts and what a
    special value means), so no value can overflow a clock, a sleep or a column later on."""

    default: int | float | None
    low: int | float
    high: int | float
    unit: str
    whole: bool = False
    note: str = ""

    def describe(self) -> str:
        """`a number from 0 to 86400 (seconds; 0: no limit)`: what --help, the docs and an error say."""
        note = f"; {self.note}" if self.note else ""
        return f"{'a whole number' if self.whole else 'a number'} from {self.low:g} to {self.high} ({self.unit}{note})"


# Every numeric setting of both scripts (environment variables and --lock-timeout), declared once: number_setting
# reads them, README.md and docs/admin-api.md list the same ranges (tests/test_adversarial.py holds them to it).
NUMBER_SETTINGS: dict[str, NumberSetting] = {
    "CH_PORT": NumberSetting(8123, 1, 65535, "a TCP port", whole=True),
    "CH_CONNECT_TIMEOUT": NumberSetting(10.0, 0.1, 3600, "seconds"),
    "CH_TIMEOUT": NumberSetting(120.0, 0.1, 86400, "seconds"),
    "CCUSAGE_TIMEOUT": NumberSetting(300.0, 0, 86400, "seconds", note="0: no limit"),
    "CCUSAGE_RETRIES": NumberSetting(2, 0, 10, "retries", whole=True),
    "CCUSAGE_RETRY_BACKOFF": NumberSetting(2.0, 0, 60, "seconds"),
    "CCUSAGE_LOCK_TIMEOUT": NumberSetting(120.0, 0, 86400, "seconds"),
    "CCUSAGE_BUDGET_DAILY_USD": NumberSetting(None, 0.01, 1_000_000_000, "US dollars"),
    "CCUSAGE_BUDGET_MONTHLY_USD": NumberSetting(None, 0.01, 1_000_000_000, "US dollars"),
    "CCUSAGE_BLOCK_TOKEN_LIMIT": NumberSetting(None, 1, 2**64 - 1, "tokens", whole=True,
                                               note="or max: the largest block seen"),
    "ANTHROPIC_TIMEOUT": NumberSetting(60.0, 0.1, 3600, "seconds"),
    "ANTHROPIC_MAX_RETRIES": NumberSetting(4, 0, 10, "retries", whole=True),
    "ANTHROPIC_RETRY_BACKOFF": NumberSetting(1.0, 0, 60, "seconds"),
    "ANTHROPIC_PAGE_LIMIT": NumberSetting(0, 0, 1000, "buckets or records per page", whole=True,
                                          note="0: each endpoint's documented maximum"),
}


def number_setting(env: Mapping[str, str], name: str, raw: str | None = None, shown: str | None = None) -> Any:
    """A numeric setting (NUMBER_SETTINGS) from the environment, or from `raw` (a command-line value, `shown` as
    its flag): its default when unset; anything that is not a finite number in its range is one line naming the
    setting and its range, exit 2."""
    setting = NUMBER_SETTINGS[name]
    text = (env.get(name, "") if raw is None else raw).strip()
    if not text:
        return setting.default
    try:
        value: int | float = int(text) if setting.whole and text.isdigit() else float(text)
    except ValueError:
        value = math.nan
    if not (setting.low <= value <= setting.high) or (setting.whole and not isinstance(value, int)):
        raise UserError(f"{shown or name}={text[:40]!r} must be {setting.describe()}", EXIT_USAGE)
    return value


SYSTEM_DATABASES = ("system", "information_schema")  # ClickHouse's own, by lower-case name
MACHINE_NAME_MAX = 128  # characters: a host name is at most 253, and the name heads every summary line


def check_machine_name(name: str, source: str) -> None:
    """The machine name is stored with every row and printed in one-line summaries and tables: refuse an empty
    one, a control character (a line break, a terminal escape) and an absurd length, without printing it."""
    if not name:
        raise UserError("the machine name is empty: set MACHINE_NAME or --machine-name", EXIT_USAGE)
    if not name.isprintable():
        raise UserError(f"the machine name (from {source}) holds a control character, such as a line break or a "
                        "terminal escape: give a name of printable characters", EXIT_USAGE)
    if len(name) > MACHINE_NAME_MAX:
        raise UserError(f"the machine name (from {source}) is {len(name):,} characters long: at most "
                        f"{MACHINE_NAME_MAX}", EXIT_USAGE)


def default_data_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", str(Path.home()))) / ".local" / "share")
    return Path(base) / "ccusage-import"


def claude_projects_dirs(env: Mapping[str, str]) -> list[Path]:
    """The transcript folders ccusage would read: CLAUDE_CONFIG_DIR (comma-separated) or the two defaults."""
    home = Path(env.get("HOME", str(Path.home())))
    if env.get("CLAUDE_CONFIG_DIR", "").strip():
        candidates = [Path(p.strip()).expanduser() for p in env["CLAUDE_CONFIG_DIR"].split(",") if p.strip()]
    else:
        xdg = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
        candidates = [xdg / "claude", home / ".claude"]
    found: list[Path] = []
    for candidate in candidates:
        projects = candidate if candidate.name == "projects" else candidate / "projects"
        if projects.is_dir() and projects.resolve() not in [p.resolve() for p in found]:
            found.append(projects)
    return found


@dataclass(frozen=True)
class AgentSource:
    """Where ccusage 20.0.24 reads one coding agent's logs: `variable` overrides the default folders (several,
    comma-separated); `patterns` are the files below a folder that hold usage (the "nothing changed" check looks at
    those only, so an agent's own busy log files do not trigger an import)."""

    variable: str
    defaults: tuple[str, ...]
    patterns: tuple[str, ...] = ("**/*",)


# Every agent ccusage 20.0.24 reads besides Claude Code (whose folders are CLAUDE_CONFIG_DIR's, see
# claude_projects_dirs). Codex, Gemini CLI and OpenCode are tested against generated logs; the others' folders are
# taken from ccusage's own help and binary. `~` is HOME; `$XDG_DATA_HOME` defaults to ~/.local/share.
AGENT_SOURCES: dict[str, AgentSource] = {
    "codex": AgentSource("CODEX_HOME", ("~/.codex",), ("sessions/**/*.jsonl", "archived_sessions/*.jsonl")),
    "gemini": AgentSource("GEMINI_DATA_DIR", ("~/.gemini/tmp",), ("*/chats/*.json", "*/chats/*.jsonl")),
    "opencode": AgentSource("OPENCODE_DATA_DIR", ("$XDG_DATA_HOME/opencode",),
                            ("opencode.db*", "storage/message/**/*.json")),
    "amp": AgentSource("AMP_DATA_DIR", ("$XDG_DATA_HOME/amp",)),
    "antigravity": AgentSource("ANTIGRAVITY_DATA_DIR", ("~/.gemini/antigravity", "~/.config/antigravity")),
    "codebuff": AgentSource("CODEBUFF_DATA_DIR", ("~/.config/manicode",)),
    "copilot": AgentSource("COPILOT_HOME", ("~/.copilot",), ("session-state/**/*.jsonl",)),
    "droid": AgentSource("DROID_SESSIONS_DIR", ("~/.factory/sessions",)),
    "goose": AgentSource("GOOSE_PATH_ROOT", ("$XDG_DATA_HOME/goose/sessions",)),
    "grok": AgentSource("GROK_HOME", ("~/.grok",)),
    "hermes": AgentSource("HERMES_HOME", ("~/.hermes",)),
    "kilo": AgentSource("KILO_DATA_DIR", ("$XDG_DATA_HOME/kilo",)),
    "kimi": AgentSource("KIMI_DATA_DIR", ("~/.kimi",)),
    "openclaw": AgentSource("OPENCLAW_DIR", ("~/.openclaw", "~/.clawdbot")),
    "pi": AgentSource("PI_AGENT_DIR", ("~/.pi/agent/sessions",)),
    "qwen": AgentSource("QWEN_DATA_DIR", ("~/.qwen",)),
    "zcode": AgentSource("ZCODE_HOME", ("~/.zcode",)),
}


def agent_dirs(env: Mapping[str, str], wanted: Callable[[str], bool]) -> dict[str, tuple[Path, ...]]:
    """The existing log folders of every wanted agent but Claude Code, as ccusage would find them."""
    home = Path(env.get("HOME", str(Path.home())))
    data_home = env.get("XDG_DATA_HOME") or str(home / ".local" / "share")
    found = {}
    for agent, source in AGENT_SOURCES.items():
        setting = env.get(source.variable, "").strip()
        candidates = setting.split(",") if setting else [
            d.replace("$XDG_DATA_HOME", data_home).replace("~", str(home), 1) for d in source.defaults]
        folders = tuple(dict.fromkeys(Path(c.strip()).expanduser() for c in candidates if c.strip()))
        if wanted(agent) and (existing := tuple(f for f in folders if f.is_dir())):
            found[agent] = existing
    return found


def wanted_agents(env: Mapping[str, str]) -> frozenset[str] | None:
    """CCUSAGE_AGENTS (comma-separated ccusage agent names) or None for every agent."""
    names = [n.strip().lower() for n in env.get("CCUSAGE_AGENTS", "").split(",") if n.strip()]
    if not names or names == ["all"]:
        return None
    if bad := [n for n in names if not re.fullmatch(r"[a-z0-9_-]{1,40}", n)]:
        raise UserError(f"CCUSAGE_AGENTS: {bad[0]!r} is not an agent name (e.g. claude,codex,gemini,opencode)")
    return frozenset(names)


# What ccusage (and npx or bunx, which start it) may see of our environment: where the logs are, where packages
# and caches are, how to reach the registry, locale and zone. Never CH_PASSWORD, ANTHROPIC_ADMIN_KEY,
# CCUSAGE_HASH_KEY or CCUSAGE_ALERT_WEBHOOK: a third-party process's environment is readable in /proc/<pid>/environ.
CHILD_ENV_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TMPDIR", "TEMP", "TMP", "LANG", "LANGUAGE", "TZ", "TERM",
    "NO_COLOR", "FORCE_COLOR", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME",
    "CLAUDE_CONFIG_DIR", *(source.variable for source in AGENT_SOURCES.values()), "COPILOT_OTEL_FILE_EXPORTER_PATH",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy",
    "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR", "NVM_DIR", "NODE_PATH", "VOLTA_HOME", "BUN_INSTALL",
})
CHILD_ENV_PREFIXES = ("LC_", "npm_config_", "NPM_CONFIG_")
def secret_forms(secret: str, user: str | None = None) -> list[str]:
    """Every form in which a secret can turn up in text: as it is, JSON-escaped, URL-encoded (either case), hex,
    base64 (alone and as the `user:secret` of HTTP Basic authentication); longest first, so a longer form is
    replaced whole."""
    if len(secret) < 3:
        return []
    raw = secret.encode("utf-8", "surrogateescape")
    quoted = urllib.parse.quote(secret, safe="")
    forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], quoted,
             re.sub("%[0-9A-F]{2}", lambda escape: escape.group().lower(), quoted), urllib.parse.quote_plus(secret),
             raw.hex(), raw.hex().upper()}
    for value in [raw] + ([f"{user}:{secret}".encode("utf-8", "surrogateescape")] if user is not None else []):
        encoded = base64.b64encode(value).decode()
        forms.update({encoded, encoded.rstrip("="), base64.urlsafe_b64encode(value).decode().rstrip("=")})
    for shift, skip in ((1, 2), (2, 3)):  # inside a longer base64 text (a whole header block) at another offset
        inner = base64.b64encode(b"\0" * shift + raw).decode().rstrip("=")[skip:-1]
        if len(inner) >= 8:
            forms.add(inner)
    return sorted(forms, key=len, reverse=True)


def redact(text: str, forms: Iterable[str]) -> str:
    for form in forms:
        text = text.replace(form, "***")
    return text


def url_secret_forms(url: str) -> list[str]:
    """A webhook URL is a secret whose tokens are in its path or query (Slack: /services/T…/B…/…): every form of the
    whole URL, of its path and query, of a password in it, and of each part of them that looks like a token (8
    characters with a digit, or 20 characters), so that none of them can be printed alone either."""
    if not url:
        return []
    parts = urllib.parse.urlsplit(url)
    after_host = url[url.index(parts.netloc) + len(parts.netloc):] if parts.netloc else url
    pieces = {url, after_host, parts.password or ""}
    pieces.update(piece for piece in re.split(r"[/?&=#;]", after_host)
                  if len(piece) >= 20 or (len(piece) >= 8 and re.search(r"\d", piece)))
    return sorted({form for piece in pieces for form in secret_forms(piece)}, key=len, reverse=True)


SECRETS: dict[str, Callable[[Mapping[str, str], str], list[str]]] = {  # every secret both scripts know, once
    "CH_PASSWORD": lambda env, value: secret_forms(value, env.get("CH_USER", "").strip() or "default"),
    "CCUSAGE_HASH_KEY": lambda env, value: secret_forms(value),
    "ANTHROPIC_ADMIN_KEY": lambda env, value: secret_forms(value.strip()),
    "CCUSAGE_ALERT_WEBHOOK": lambda env, value: url_secret_forms(value.strip()),
    "AWS_SECRET_ACCESS_KEY": lambda env, value: secret_forms(value.strip()),
    "AWS_SESSION_TOKEN": lambda env, value: secret_forms(value.strip()),
}
SECRET_VARIABLES = tuple(SECRETS)


def secret_texts(env: Mapping[str, str]) -> tuple[str, ...]:
    """Every form of every secret set in `env`, longest first: what is removed from all that is printed or stored,
    and what no variable handed to a child process may hold."""
    forms = {form for name, forms_of in SECRETS.items() if env.get(name) for form in forms_of(env, env[name])}
    return tuple(sorted(forms, key=len, reverse=True))


def child_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The allow-listed part of `env`, less any variable whose value holds one of our secrets, in any form."""
    hidden = secret_texts(env)
    return {name: value for name, value in env.items()
            if (name in CHILD_ENV_NAMES or name.startswith(CHILD_ENV_PREFIXES))
            and not any(secret in value for secret in hidden)}


@dataclass(frozen=True)
class Budgets:
    """Spending limits watched after every import and by --alerts; None: not set."""

    daily_usd: float | None = None
    monthly_usd: float | None = None
    block_tokens: int | None = None
    block_tokens_max: bool = False  # CCUSAGE_BLOCK_TOKEN_LIMIT=max: the largest finished block seen, as ccusage's
    scope: str = "all"  # all: every machine of the store together; machine: this machine alone

    @property
    def any(self) -> bool:
        return (self.daily_usd is not None or self.monthly_usd is not None or self.block_tokens is not None
                or self.block_tokens_max)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Budgets:
        """The CCUSAGE_BUDGET_* settings; a value that is not one is a usage error naming the variable."""
        is_max = env.get("CCUSAGE_BLOCK_TOKEN_LIMIT", "").strip().lower() == "max"
        scope = env.get("CCUSAGE_BUDGET_SCOPE", "").strip() or "all"
        if scope not in ("all", "machine"):
            raise UserError(f"CCUSAGE_BUDGET_SCOPE={scope!r} must be machine or all", EXIT_USAGE)
        return cls(daily_usd=number_setting(env, "CCUSAGE_BUDGET_DAILY_USD"),
                   monthly_usd=number_setting(env, "CCUSAGE_BUDGET_MONTHLY_USD"),
                   block_tokens=None if is_max else number_setting(env, "CCUSAGE_BLOCK_TOKEN_LIMIT"),
                   block_tokens_max=is_max, scope=scope)


def alert_settings(env: Mapping[str, str]) -> tuple[str, bool]:
    """CCUSAGE_ALERT_WEBHOOK (an http(s) URL, never shown: it is a secret) and CCUSAGE_ALERT_DESKTOP (1 or 0)."""
    webhook = env.get("CCUSAGE_ALERT_WEBHOOK", "").strip()
    if webhook:
        parts = urllib.parse.urlsplit(webhook)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UserError("CCUSAGE_ALERT_WEBHOOK is not an http:// or https:// URL (its value is not shown: it is "
                            "a secret)", EXIT_USAGE)
    desktop = env.get("CCUSAGE_ALERT_DESKTOP", "").strip()
    if desktop not in ("", "0", "1"):
        raise UserError(f"CCUSAGE_ALERT_DESKTOP={desktop!r} must be 1 (on) or 0 (off)", EXIT_USAGE)
    return webhook, desktop == "1"


# What a desktop notifier needs besides the child environment: the session's display and message bus.
DESKTOP_ENV_NAMES = ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR")


def desktop_environment(env: Mapping[str, str], child_env: Mapping[str, str]) -> dict[str, str]:
    """The child environment plus the session's display variables; under cron, which has no session bus address,
    the user's bus at /run/user/UID/bus when it exists (where notify-send finds the desktop)."""
    desktop = {**child_env, **{name: env[name] for name in DESKTOP_ENV_NAMES if env.get(name)}}
    bus = Path(f"/run/user/{os.getuid()}/bus")
    if "DBUS_SESSION_BUS_ADDRESS" not in desktop and bus.exists():
        desktop["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={bus}"
    return desktop


def key_fingerprint(key: str) -> str:
    """What a store and a share keep of CCUSAGE_HASH_KEY: enough to tell two keys apart, nothing to recover one."""
    return hashlib.sha256(b"ccusage-import fingerprint\0" + key.encode()).hexdigest()[:16]


S3_ENV_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION")


@dataclass(frozen=True)
class ShareSetting:
    """CCUSAGE_SHARE: a folder (synced by Syncthing, Dropbox, iCloud, a network mount) or `s3://bucket/prefix`
    (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION; CCUSAGE_S3_ENDPOINT for MinIO, R2, B2). The engine reads
    S3 credentials from the process environment (`s3_env`), so no credential is ever written into a query."""

    where: str  # the folder's absolute path, or the base URL every file's URL starts with
    s3: bool = False
    s3_env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str], host: str | None, hash_key: str | None) -> ShareSetting | None:
        setting = env.get("CCUSAGE_SHARE", "").strip()
        if not setting:
            return None
        if host:
            raise UserError("CCUSAGE_SHARE is set with CH_HOST: a server already holds every machine's rows; use "
                            "one or the other", EXIT_USAGE)
        if not hash_key:
            raise UserError("CCUSAGE_SHARE needs CCUSAGE_HASH_KEY, the same key on every machine of the share (a "
                            "store's own key would hash the same project differently on each machine)", EXIT_USAGE)
        if not setting.startswith("s3://"):
            return cls(str(Path(setting).expanduser().absolute()))
        bucket, _, prefix = setting[len("s3://"):].partition("/")
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
            raise UserError(f"CCUSAGE_SHARE={setting[:80]!r}: {bucket[:63]!r} is not an S3 bucket name", EXIT_USAGE)
        if missing := [name for name in S3_ENV_NAMES[:2] if not env.get(name, "").strip()]:
            raise UserError(f"CCUSAGE_SHARE is an S3 bucket: set {' and '.join(missing)}", EXIT_USAGE)
        region = env.get("AWS_REGION", "").strip() or "us-east-1"
        endpoint = env.get("CCUSAGE_S3_ENDPOINT", "").strip().rstrip("/")
        if endpoint and not re.fullmatch(r"https?://[^/?#\s]+", endpoint):
            raise UserError(f"CCUSAGE_S3_ENDPOINT={endpoint[:80]!r} must be an http(s):// address without a path, "
                            "such as https://ACCOUNT.r2.cloudflarestorage.com", EXIT_USAGE)
        base = f"{endpoint}/{bucket}" if endpoint else f"https://{bucket}.s3.{region}.amazonaws.com"
        prefix = "/".join(quoted for part in prefix.split("/") if (quoted := urllib.parse.quote(part)))
        return cls(f"{base}/{prefix}" if prefix else base, True,
                   {name: env[name].strip() for name in S3_ENV_NAMES if env.get(name, "").strip()} | {
                       "AWS_REGION": region})

    def __str__(self) -> str:
        return self.where


@dataclass(frozen=True)
class Config:
    """Everything a run needs, read once from the environment and the command line."""

    machine_name: str
    ch_host: str | None
    ch_port: int
    ch_user: str
    ch_password: str = field(repr=False)
    ch_database: str = "default"
    ch_secure: bool = False
    ch_connect_timeout: float = 10.0
    ch_timeout: float = 120.0
    embedded_path: Path = Path()
    data_dir: Path = Path()
    ccusage_version: str = DEFAULT_CCUSAGE_VERSION
    timezone: str = "UTC"
    claude_dirs: tuple[Path, ...] = ()
    agent_dirs: Mapping[str, tuple[Path, ...]] = field(default_factory=dict)
    agents: frozenset[str] | None = None  # CCUSAGE_AGENTS; None: every agent
    command_timeout: float = 300.0
    command_retries: int = 2
    retry_backoff: float = 2.0
    hash_projects: bool = True
    hash_key: str | None = field(default=None, repr=False)
    lock_timeout: float = 120.0
    machine_name_source: str = "the host name"
    claude_dirs_setting: str = "~/.config/claude or ~/.claude"
    child_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)
    budgets: Budgets = Budgets()
    alert_webhook: str = field(default="", repr=False)
    alert_desktop: bool = False
    desktop_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    share: ShareSetting | None = None  # CCUSAGE_SHARE: where every machine publishes its rows

    @property
    def embedded(self) -> bool:
        return not self.ch_host

    def wants(self, agent: str) -> bool:
        return self.agents is None or agent in self.agents

    @classmethod
    def from_env(cls, env: Mapping[str, str], args: argparse.Namespace | None = None) -> Config:
        def arg(name: str) -> Any:
            return getattr(args, name, None) if args is not None else None

        host = env.get("CH_HOST", "").strip() or None
        port = number_setting(env, "CH_PORT")
        if host and port in NATIVE_PORTS:
            raise UserError(
                f"CH_PORT={port} is ClickHouse's native-protocol port {NATIVE_PORTS[port]}; this tool speaks HTTP: "
                "use the HTTP port, usually 8123 (or 8443 for HTTPS)"
            )
        protocol = env.get("CH_PROTOCOL", "").strip().lower()
        if protocol not in ("", "http", "https"):
            raise UserError(f"CH_PROTOCOL={protocol!r} must be http or https")
        database = env.get("CH_DATABASE", "").strip() or "default"
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
            raise UserError(f"CH_DATABASE={database!r} is not a plain database name (letters, digits, _)")
        if database.lower() in SYSTEM_DATABASES:
            raise UserError(f"CH_DATABASE={database!r} is one of ClickHouse's own databases (system, "
                            "information_schema; not persistent in chDB): name a database of your own", EXIT_USAGE)
        machine_source = ("--machine-name" if arg("machine_name") else
                          "MACHINE_NAME" if env.get("MACHINE_NAME", "").strip() else "the host name")
        machine = (arg("machine_name") or env.get("MACHINE_NAME", "").strip() or socket.gethostname()).strip()
        check_machine_name(machine, machine_source)
        version = env.get("CCUSAGE_VERSION", "").strip() or DEFAULT_CCUSAGE_VERSION
        if not re.fullmatch(r"\d+\.\d+\.\d+", version):
            raise UserError(f"CCUSAGE_VERSION={version!r} must be an exact version such as {DEFAULT_CCUSAGE_VERSION}")
        timezone = env.get("CCUSAGE_TIMEZONE", "").strip() or "UTC"
        try:
            zoneinfo.ZoneInfo(timezone)
        except (ValueError, KeyError, zoneinfo.ZoneInfoNotFoundError):
            raise UserError(f"CCUSAGE_TIMEZONE={timezone!r} is not an IANA time zone such as Europe/Berlin") from None
        data_dir = default_data_dir(env)
        embedded_path = Path(env.get("CCUSAGE_IMPORT_DB", "").strip() or data_dir / "chdb").expanduser()
        user = env.get("CH_USER", "").strip() or "default"
        password = env.get("CH_PASSWORD", "")
        hash_key = env.get("CCUSAGE_HASH_KEY") or None
        claude_setting = env.get("CLAUDE_CONFIG_DIR", "").strip()
        lock_timeout = arg("lock_timeout")  # --lock-timeout, as typed: the same range as CCUSAGE_LOCK_TIMEOUT
        agents = wanted_agents(env)
        webhook, desktop = alert_settings(env)
        child_env = child_environment(env)
        return cls(
            machine_name=machine,
            ch_host=host,
            ch_port=port,
            ch_user=user,
            ch_password=password,
            ch_database=database,
            ch_secure=protocol == "https" or (protocol == "" and port in HTTPS_PORTS),
            ch_connect_timeout=number_setting(env, "CH_CONNECT_TIMEOUT"),
            ch_timeout=number_setting(env, "CH_TIMEOUT"),
            embedded_path=embedded_path,
            data_dir=embedded_path.parent if env.get("CCUSAGE_IMPORT_DB", "").strip() else data_dir,
            ccusage_version=version,
            timezone=timezone,
            claude_dirs=tuple(claude_projects_dirs(env)) if agents is None or CLAUDE in agents else (),
            agent_dirs=agent_dirs(env, lambda agent: agents is None or agent in agents),
            agents=agents,
            command_timeout=number_setting(env, "CCUSAGE_TIMEOUT"),
            command_retries=number_setting(env, "CCUSAGE_RETRIES"),
            retry_backoff=number_setting(env, "CCUSAGE_RETRY_BACKOFF"),
            hash_projects=not arg("no_hash_projects"),
            hash_key=hash_key,
            lock_timeout=number_setting(env, "CCUSAGE_LOCK_TIMEOUT", lock_timeout,
                                        "--lock-timeout" if lock_timeout is not None else None),
            machine_name_source=machine_source,
            claude_dirs_setting=f"CLAUDE_CONFIG_DIR={claude_setting}" if claude_setting else
            "~/.config/claude or ~/.claude",
            child_env=child_env,
            secrets=secret_texts(env),
            budgets=Budgets.from_env(env),
            alert_webhook=webhook,
            alert_desktop=desktop,
            desktop_env=desktop_environment(env, child_env) if desktop else {},
            share=ShareSetting.from_env(env, host, hash_key),
        )

    def store_description(self) -> str:
        if self.embedded:
            return f"embedded chDB at {self.embedded_path} (database {self.ch_database})"
        scheme = "https" if self.ch_secure else "http"
        return f"{scheme}://{self.ch_user}@{self.ch_host}:{self.ch_port} (database {self.ch_database})"

    def state_dir(self) -> Path:
        """Where this machine's import state lives: inside the embedded store, or beside the server's lock."""
        return self.embedded_path if self.embedded else self.lock_path().with_suffix("")

    def lock_path(self) -> Path:
        """One writer per embedded store (by its real path, so a symlink shares it); one import per machine and
        server."""
        if self.embedded:
            real = self.embedded_path.resolve()
            return real.with_name(real.name + ".lock")
        target = f"{self.ch_host}:{self.ch_port}/{self.ch_database}/{self.machine_name}"
        return self.data_dir / f"server-{hashlib.sha256(target.encode()).hexdigest()[:12]}.lock"

    def redact(self, text: str) -> str:
        """Remove the password, an explicit hash key and the alert webhook URL, in every encoding, from text that may
        be printed or stored."""
        return redact(text, self.secrets)


def embedded_store_present(config: Config) -> bool:
    """Whether the embedded store's tables are still on disk (a folder emptied behind the state file is not)."""
    return (config.embedded_path / "data" / config.ch_database / "ccusage_import_runs").exists()


def settings_timezone(settings: Any) -> str | None:
    """The time zone in the settings text a state file keeps (VERSION/ZONE/HASHING/AGENTS; zones hold slashes)."""
    parts = settings.split("/") if isinstance(settings, str) else []
    return "/".join(parts[1:-2]) or None if len(parts) >= 4 else None


# ----------------------------------------------------------------------------------------------------------------
# Helpers every section may use: private atomic writes, a progress line, times
# ----------------------------------------------------------------------------------------------------------------


def private_folder(folder: Path, tighten: bool = False) -> None:
    """`folder` and any parent it lacks, created this user's only (0700, whatever the umask). `tighten`: a folder
    that is ours alone (the embedded store) is made 0700 if it exists already (an older release made it 0755)."""
    for missing in reversed([f for f in (folder, *folder.parents) if not f.exists()]):
        with contextlib.suppress(FileExistsError):
            missing.mkdir(mode=0o700)
            os.chmod(missing, 0o700)
    found = folder.stat()
    if tighten and found.st_uid == os.geteuid() and stat.S_IMODE(found.st_mode) & 0o077:
        os.chmod(folder, stat.S_IMODE(found.st_mode) & 0o700)


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all, readable by this user only (0600 whatever the umask): a
    temporary file beside it, then a rename. A symbolic link is written through to its target; a target that is
    not a regular file (a folder, a device, a FIFO) is refused, so a rename never replaces one."""
    target = Path(os.path.realpath(path))
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISREG(target.stat().st_mode):
            raise UserError(f"{path} is not a regular file (a folder, a device or a FIFO?): name a new file or a "
                            "regular one", EXIT_USAGE)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


class Progress:
    """A one-line progress display on a terminal; silent under cron so logs stay clean lines."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()

    def update(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r\033[K{text}")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


class ShapeError(ValueError):
    """The JSON is not a shape this importer knows (ccusage 16-20), or holds values no table can store."""


def parse_timestamp(value: Any, where: str = "timestamp") -> dt.datetime:
    """RFC 3339 (with Z or an offset) or a bare date, as an aware UTC datetime whatever the local zone is."""
    try:
        if isinstance(value, str) and len(value) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), dt.UTC)
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, TypeError, ValueError, OverflowError):
        raise ShapeError(f"{where}: {value!r} is not a timestamp") from None
    if parsed.tzinfo is None:
        raise ShapeError(f"{where}: {value!r} has no time zone")
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:
        raise ShapeError(f"{where}: {value!r} is out of range") from None


def clock_hour(moment: dt.datetime) -> dt.datetime:
    """The start of the UTC clock hour `moment` falls in (a one-hour block of ccusage starts there)."""
    return moment.replace(minute=0, second=0, microsecond=0)


def human_age(age: dt.timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} days"


# ----------------------------------------------------------------------------------------------------------------
# Source: ccusage
# ----------------------------------------------------------------------------------------------------------------

NATIVE_MISSING = "native binary is not available"


class ReportError(Exception):
    """One ccusage report could not be fetched or understood; the other reports are still imported."""


@dataclass(frozen=True)
class Runner:
    """How ccusage is started: its argv prefix and a short name for messages."""

    name: str
    argv: tuple[str, ...]


def run_command(argv: Sequence[str], env: Mapping[str, str], timeout: float | None) -> subprocess.CompletedProcess:
    """Run a program in its own process group, so a timeout ends it and everything it started (npx -> node ->
    binary); raises subprocess.TimeoutExpired after killing the group."""
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                          env=dict(env), start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout or None)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def _native_binary_beside(launcher: Path) -> Path | None:
    """The platform binary that ccusage 20's Node launcher (node_modules/ccusage/src/cli.js) would spawn."""
    system = {"linux": "linux", "darwin": "darwin", "win32": "win32"}.get(sys.platform)
    machine = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(os.uname().machine.lower())
    if not system or not machine:
        return None
    package_dir = launcher.resolve().parent.parent
    for node_modules in (package_dir / "node_modules", package_dir.parent):
        binary = node_modules / "@ccusage" / f"ccusage-{system}-{machine}" / "bin" / "ccusage"
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
    return None


def _package_version(launcher: Path) -> str | None:
    try:
        return json.loads((launcher.resolve().parent.parent / "package.json").read_text()).get("version")
    except (OSError, ValueError):
        return None


def _npx_cached_launcher(version: str, npm_cache: Path) -> Path | None:
    """A ccusage of `version` that npx already installed, so later runs skip npx's registry round-trip."""
    for package_json in sorted(npm_cache.glob("_npx/*/node_modules/ccusage/package.json")):
        launcher = package_json.parent / "src" / "cli.js"
        if _package_version(launcher) == version:
            return launcher
    return None


def resolve_runner(config: Config, *, install: bool = True) -> Runner:
    """ccusage on PATH of the pinned version, else one npx installed before, else bunx, else npx -y."""
    version, env = config.ccusage_version, config.child_env
    on_path = shutil.which("ccusage", path=env.get("PATH"))
    if on_path:
        launcher = Path(on_path)
        if _package_version(launcher) == version:
            native = _native_binary_beside(launcher)
            return Runner("ccusage", (str(native),) if native else (on_path,))
        if cli_version((on_path,), config) == version:
            return Runner("ccusage", (on_path,))
    npm_cache = Path(env.get("npm_config_cache") or Path(env.get("HOME", str(Path.home()))) / ".npm")
    cached = _npx_cached_launcher(version, npm_cache)
    if cached and (native := _native_binary_beside(cached)):
        return Runner("npx (cached binary)", (str(native),))
    if bunx := shutil.which("bunx", path=env.get("PATH")):
        return Runner("bunx", (bunx, f"ccusage@{version}"))
    if npx := shutil.which("npx", path=env.get("PATH")):
        if install and cli_version((npx, "-y", f"ccusage@{version}"), config) == version:
            cached = _npx_cached_launcher(version, npm_cache)
            if cached and (native := _native_binary_beside(cached)):
                return Runner("npx (cached binary)", (str(native),))
        return Runner("npx", (npx, "-y", f"ccusage@{version}"))
    raise UserError(
        f"ccusage {version} not found: install Node.js (for npx) or Bun, "
        f"or put it on PATH with `npm install -g ccusage@{version}`"
    )


def cli_version(argv: Sequence[str], config: Config) -> str | None:
    """What `argv --version` prints, within the configured command timeout (npx may have to download first)."""
    try:
        done = run_command([*argv, "--version"], config.child_env, config.command_timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"(\d+\.\d+\.\d+)", done.stdout)
    return match.group(1) if done.returncode == 0 and match else None


def ccusage_command(runner: Runner, report: Report, config: Config, since: dt.date | None = None) -> list[str]:
    """argv for one report; ccusage 19+ keeps Claude Code reports under `claude`, older ones at the top."""
    prefix = ["claude"] if int(config.ccusage_version.split(".")[0]) >= 19 and not report.for_agents else []
    window = ["--since", since.strftime("%Y%m%d")] if since else []
    return [*runner.argv, *prefix, *report.args, "--json", "--offline", "--timezone", config.timezone, *window]


@dataclass(frozen=True)
class ReadScope:
    """What Claude Code's reports read: its folders, or (an incremental run) folders of links to the window's
    transcripts (`window.files`), with the window's first day for the reports by day and the day of its first clock
    hour (the day before, where midnight is not on the hour) for the report of hours; and the blocks report's
    folders of links to `window.block_files`, which reach further back."""

    claude_folders: tuple[str, ...]
    since: dt.date | None = None
    hours_since: dt.date | None = None
    block_folders: tuple[str, ...] = ()  # what the blocks report reads, where it differs

    def folders(self, report: Report) -> tuple[str, ...]:
        return self.claude_folders if report.by_day or report.by_hour or not self.block_folders else (
            self.block_folders)


@contextmanager
def read_scope(config: Config, window: Window | None) -> Iterator[tuple[ReadScope, Window | None]]:
    """The whole Claude folders, or for a window temporary folders laid out like them in this tool's data folder:
    hard links (ccusage skips symbolic links) to the window's files for the day and hour reports, and for the blocks
    report either links to its files or (`window.blocks_from`) copies of their lines written since that block's
    start. Where the transcripts are on another file system, no link can be made: then everything is read, and the
    window is dropped."""
    whole = ReadScope(tuple(str(folder) for folder in config.claude_dirs))
    if window is None or not window.files:
        yield whole, window
        return
    private_folder(config.data_dir)
    with tempfile.TemporaryDirectory(prefix="window-", dir=config.data_dir) as root:
        try:
            days = _laid_out(config, Path(root) / "days", window.files)
            blocks = _laid_out(config, Path(root) / "blocks", window.block_files, window.block_lines_from,
                               window.begun_before)
        except OSError:
            yield whole, None
            return
        first_hour = window.first_hour.astimezone(zoneinfo.ZoneInfo(config.timezone)).date() if (
            window.first_hour) else None
        yield ReadScope(days, window.since, first_hour, blocks), window


def _laid_out(config: Config, root: Path, paths: Iterable[str], lines_from: dt.datetime | None = None,
              begun_before: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """Folders laid out like the Claude folders that hold `paths`: hard links, or for a transcript begun before
    `lines_from` (a long session, a resumed one replaying its history) a copy of its lines written since."""
    folders = [root / str(index) for index in range(len(config.claude_dirs))]
    for folder in folders:
        (folder / "projects").mkdir(parents=True)
    for path in paths:
        index, base = next((i, b) for i, b in enumerate(config.claude_dirs) if Path(path).is_relative_to(b))
        target = folders[index] / "projects" / Path(path).relative_to(base)
        target.parent.mkdir(parents=True, exist_ok=True)
        if lines_from is None or path not in begun_before:
            os.link(path, target)
        else:
            target.write_bytes(lines_written_from(path, lines_from))
    return tuple(str(folder) for folder in folders)


def lines_written_from(path: str, moment: dt.datetime) -> bytes:
    """A transcript's lines whose time is `moment` or later (lines without a time count for no report)."""
    with open(path, "rb") as handle:
        lines = handle.read().splitlines(keepends=True)
    return b"".join(raw for raw, at in zip(lines, map(_line_time, lines), strict=True) if at and at >= moment)


# Full reads at once: ccusage's native binary keeps about two cores busy with its own threads, so more than half the
# cores only compete (four full reads of 100k lines on 2 cores: 2.7 s, 1.2 s of it in the kernel; two at a time:
# 2.2 s). A window's reports are short and all start at once (two at a time made one new hour 0.1 s slower).
FULL_READS_AT_ONCE = max(2, (os.cpu_count() or 2) // 2)


def fetch_report(runner: Runner, report: Report, config: Config, scope: ReadScope | None = None) -> Any:
    """Run one ccusage report with a timeout and retries; return its parsed JSON or raise ReportError."""
    scope = scope or ReadScope(tuple(str(p) for p in config.claude_dirs))
    child_env = {**config.child_env, "NO_COLOR": config.child_env.get("NO_COLOR", "1")}
    if not report.for_agents:
        return _fetch(runner, report, config, {**child_env, "CLAUDE_CONFIG_DIR": ",".join(scope.folders(report))},
                      scope.hours_since if report.by_hour else scope.since if report.by_day else None)
    with tempfile.TemporaryDirectory(prefix="ccusage-import-") as empty:  # every agent but Claude Code: an empty one
        (Path(empty) / "projects").mkdir()
        return _fetch(runner, report, config, {**child_env, "CLAUDE_CONFIG_DIR": empty}, None)


def _fetch(runner: Runner, report: Report, config: Config, child_env: Mapping[str, str],
           since: dt.date | None) -> Any:
    argv = ccusage_command(runner, report, config, since)
    shown = f"`ccusage {' '.join(argv[len(runner.argv):])}` (ccusage {config.ccusage_version} via {runner.name})"
    problem = ""
    for attempt in range(config.command_retries + 1):
        if attempt:
            time.sleep(config.retry_backoff * 2 ** (attempt - 1))
        try:
            done = run_command(argv, child_env, config.command_timeout)
        except subprocess.TimeoutExpired:
            problem = f"timed out after {config.command_timeout:g} s"
            continue
        except OSError as exc:
            raise ReportError(f"{shown} could not start: {exc.strerror}") from None
        if done.returncode == 0:
            try:
                return json.loads(done.stdout)
            except ValueError:
                raise ReportError(f"{shown} printed output that is not JSON: {done.stdout[:80]!r}") from None
        last_line = failure_line(done.stderr.strip() or done.stdout.strip() or "no output")
        if NATIVE_MISSING in done.stderr:
            raise ReportError(
                f"{shown} failed: {last_line} (this ccusage release has no binary for this platform; "
                f"pin a release that has one with CCUSAGE_VERSION, e.g. {DEFAULT_CCUSAGE_VERSION})"
            )
        problem = f"exited {done.returncode}: {last_line[:300]}"
    raise ReportError(f"{shown} {problem} (after {config.command_retries + 1} attempts)")


NODE_EXIT_LINE = re.compile(r"Node\.js (v\d+\.\d+\.\d+)")  # what Node.js prints last after an uncaught error


def failure_line(output: str) -> str:
    """The line of a failed ccusage's output that says why: its last one, unless Node.js ended it on an uncaught
    error (a JavaScript release of ccusage): that last line is only Node's version, the error is above it."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    node = NODE_EXIT_LINE.fullmatch(lines[-1])
    if not node:
        return lines[-1]
    error = next((line for line in reversed(lines) if re.match(r"[A-Za-z]*Error\b", line)), "no error message")
    return (f"{error} (ccusage stopped on an uncaught JavaScript error under Node.js {node.group(1)}; pin the tested "
            f"release with CCUSAGE_VERSION={DEFAULT_CCUSAGE_VERSION})")


@dataclass(frozen=True)
class Transcript:
    """One Claude Code transcript file as the scan saw it."""

    size: int
    mtime_ns: int
    session: tuple[str, str]  # (project, session) as ccusage names them
    late_ns: int = 0  # its last line, when that was written after mtime_ns (a time set back): see late_lines

    @property
    def written_ns(self) -> int:
        """Every line of the file was written at or before this."""
        return max(self.mtime_ns, self.late_ns)


@dataclass(frozen=True)
class TranscriptScan:
    """What is on disk now: whether anything changed since the last import, each Claude Code transcript and
    session's file count, and how many log files each other agent has."""

    files: int
    fingerprint: str
    session_files: dict[tuple[str, str], int] = field(default_factory=dict)
    agent_files: dict[str, int] = field(default_factory=dict)
    transcript_mtimes: tuple[float, ...] = ()  # Claude Code's, oldest first: what its cleanup deletes next
    transcripts: dict[str, Transcript] = field(default_factory=dict)  # those this user may read
    unreadable: dict[str, Transcript] = field(default_factory=dict)  # those it may not (written by `sudo claude`)

    def transcripts_before(self, moment: dt.datetime) -> int:
        """How many transcripts were last written before `moment` (Claude Code deletes them by that age)."""
        return bisect.bisect_left(self.transcript_mtimes, moment.timestamp())


def session_of(parts: Sequence[str]) -> tuple[str, str]:
    """(project, session) of a transcript path below projects/, named as ccusage 20 names them."""
    if len(parts) == 2:
        return parts[0], parts[1].removesuffix(".jsonl")
    if len(parts) >= 4 and parts[-2] == "subagents":
        return parts[0], parts[-3]
    return parts[0], parts[-2]


def scan_transcripts(dirs: Iterable[Path], agents: Mapping[str, Sequence[Path]] | None = None) -> TranscriptScan:
    """Path, size and modification time of every Claude Code transcript and every other agent's log file."""
    digest = hashlib.sha256()
    files = 0
    session_files: dict[tuple[str, str], int] = defaultdict(int)
    mtimes: list[float] = []
    transcripts: dict[str, Transcript] = {}
    unreadable: dict[str, Transcript] = {}
    may_read = _reader()
    for base in dirs:
        entries = []
        for path, parts, info in _jsonl_files(str(base), ()):
            entries.append((path, info.st_size, info.st_mtime_ns))
            mtimes.append(info.st_mtime)
            session = session_of(parts)
            if not may_read(info):  # ccusage would skip it without a word: the run must say so
                unreadable[path] = Transcript(info.st_size, info.st_mtime_ns, session)
                continue
            session_files[session] += 1
            transcripts[path] = Transcript(info.st_size, info.st_mtime_ns, session)
        for path, size, mtime in sorted(entries):
            digest.update(f"{path}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
        files += len(entries)
    agent_files = {}
    for agent, folders in sorted((agents or {}).items()):
        entries = sorted({(str(path), stat.st_size, stat.st_mtime_ns) for folder in folders
                          for pattern in AGENT_SOURCES[agent].patterns for path in folder.glob(pattern)
                          if (stat := _file_stat(path))})
        for path, size, mtime in entries:
            digest.update(f"{agent}\0{path}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
        if entries:
            agent_files[agent] = len(entries)
    return TranscriptScan(files, digest.hexdigest(), dict(session_files), agent_files, tuple(sorted(mtimes)),
                          transcripts, unreadable)


def _jsonl_files(folder: str, below: tuple[str, ...]) -> Iterator[tuple[str, tuple[str, ...], os.stat_result]]:
    """Path, parts below the root and stat of each .jsonl file under `folder`, as os.walk orders them (a folder's
    files before its subfolders', symbolic links to folders not followed), without os.walk's lstat of every
    folder (7,700 at 1M lines) or a Path per file (17,000)."""
    try:
        with os.scandir(folder) as found:
            entries = list(found)
    except OSError:
        return
    folders = []
    for entry in entries:
        if entry.is_dir():  # a symbolic link to a folder too, which os.walk lists but does not enter
            if not entry.is_symlink():
                folders.append(entry)
        elif entry.name.endswith(".jsonl"):
            try:
                yield entry.path, (*below, entry.name), entry.stat()
            except OSError:
                continue
    for entry in folders:
        yield from _jsonl_files(entry.path, (*below, entry.name))


def _reader() -> Callable[[os.stat_result], bool]:
    """Whether this user may read a file, from its stat alone (no extra system call per transcript)."""
    user, groups = os.geteuid(), {os.getegid(), *os.getgroups()}

    def may_read(stat: os.stat_result) -> bool:
        if user == 0:
            return True
        if stat.st_uid == user:
            return bool(stat.st_mode & 0o400)
        return bool(stat.st_mode & (0o040 if stat.st_gid in groups else 0o004))

    return may_read


BLOCK_HOURS = 5  # ccusage's 5-hour blocks: a block ends 5 h after it starts, or at a gap of more than 5 h
LINE_RESOLUTION = dt.timedelta(milliseconds=1)  # the finest step between two lines' times
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _ns(moment: dt.datetime) -> int:
    """A moment in nanoseconds since the epoch, as file times are kept, exactly (`timestamp() * 1e9` goes through a
    float: up to 256 ns off for this century's times)."""
    return (moment - EPOCH) // dt.timedelta(microseconds=1) * 1000


def _from_ns(ns: int) -> dt.datetime:
    """The moment `_ns` made nanoseconds of (to the microsecond, as datetimes hold it)."""
    return EPOCH + dt.timedelta(microseconds=ns // 1000)


@dataclass(frozen=True)
class Window:
    """What an incremental run reads of Claude Code. No files: no transcript changed, its reports are not run.

    `files`: the transcripts last written since the clock hour of `start` (midnight of `since` in the report's zone,
    which falls inside a clock hour in a zone like UTC+5:30). They hold every line of every day from `since` on and
    of every clock hour from `first_hour` on, and every session that any of them belongs to whole (the window
    reaches back to each such session's first line), so ccusage computes those days, hours, project-days and
    sessions exactly as from every file, and reads a fraction of them.
    `block_files`, what the blocks report reads (without `--since`): where an earlier import stored a block of the
    full history that starts at or before `start`, every transcript last written since the latest such start
    (`blocks_from`), of which only the lines written since then are read: ccusage then starts its chain of blocks
    where the full history's has a block, and both go on alike. Else `files` and every other transcript last
    written within 5 hours before the earliest line read (`earliest`), again until none is; every transcript left
    out was last written at or before `unread_before` (`exact_blocks_from`)."""

    since: dt.date | None = None
    start: dt.datetime | None = None
    files: tuple[str, ...] = ()
    sessions: frozenset[tuple[str, str]] = frozenset()
    block_files: tuple[str, ...] = ()
    earliest: dt.datetime | None = None
    unread_before: dt.datetime | None = None
    blocks_from: dt.datetime | None = None  # a block start of the full history's: its lines from then on are read
    block_lines_from: dt.datetime | None = None  # blocks_from, or just after it when its line is the block before's
    begun_before: frozenset[str] = frozenset()  # block files with earlier lines: only those from then on are read

    @property
    def first_hour(self) -> dt.datetime | None:
        return clock_hour(self.start) if self.start else None

    @property
    def read_from(self) -> dt.datetime | None:
        """The earliest moment any report of this window reads from (None: nothing read)."""
        return min((t for t in (self.start, self.blocks_from, self.earliest) if t), default=None)


def read_window(scan: TranscriptScan, previous: Mapping[str, Sequence[int]], timezone: str,
                first_line_time: Callable[[str], dt.datetime | None],
                block_starts: Sequence[dt.datetime] = (), reach_back: dt.datetime | None = None) -> Window | None:
    """The window that covers every transcript changed since `previous` (path -> [size, mtime_ns] at the last
    import), or None when no transcript changed.

    It starts at the first line of every changed session, and no later than `reach_back` (where earlier imports
    left periods unproven while a transcript that is back now was away: GoneTranscripts.reach_back). A session of
    the same project that the window touches and that shares a response with a changed transcript (a resumed
    session replays its predecessor's, and ccusage credits a shared response to one session only: the new copy may
    take it from the older session) pulls the start back to its own first line, so it is held whole and compared
    too; that repeats until none straddles the start. One that shares nothing keeps its stored row (nothing it
    counts changed) and is not compared. The window's `sessions` are those it holds whole: only they are compared
    with the stored ones. `block_starts`: starts of blocks of the full history that earlier imports stored."""
    changed = [path for path, file in scan.transcripts.items() if list(previous.get(path, ())) != [file.size,
                                                                                                   file.mtime_ns]]
    if not changed:
        return None
    by_session: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path, file in scan.transcripts.items():
        by_session[file.session].append(path)
    heads: dict[str, dt.datetime] = {}

    def head(path: str) -> dt.datetime:
        if path not in heads:
            heads[path] = first_line_time(path) or _mtime(scan.transcripts[path])
        return heads[path]

    def session_start(session: tuple[str, str]) -> dt.datetime:
        return min(head(path) for path in by_session[session])

    sharing: dict[str, bool] = {}  # path -> whether it holds a response id of a changed transcript

    def shares_with_changed(session: tuple[str, str]) -> bool:
        for path in by_session[session]:
            if path not in sharing:
                sharing[path] = bool(changed_ids & response_ids(path))
        return any(sharing[path] for path in by_session[session])

    zone = zoneinfo.ZoneInfo(timezone)
    projects = {scan.transcripts[path].session[0] for path in changed}
    changed_ids = frozenset().union(*map(response_ids, changed))
    start = min(session_start(scan.transcripts[path].session) for path in changed)
    start = min(start, reach_back) if reach_back else start
    while True:
        midnight = dt.datetime.combine(start.astimezone(zone).date(), dt.time(), zone).astimezone(dt.UTC)
        since_ns = _ns(midnight)  # compared as integers: 17k transcripts at 1M lines
        touching = {session for session, paths in by_session.items()
                    if any(scan.transcripts[path].written_ns >= since_ns for path in paths)}
        earliest = min((session_start(session) for session in touching if session[0] in projects
                        and session_start(session) < midnight and shares_with_changed(session)), default=midnight)
        if earliest >= midnight:
            break
        start = earliest
    hour_ns = _ns(clock_hour(midnight))
    files = tuple(path for path, file in scan.transcripts.items() if file.written_ns >= hour_ns)
    whole = frozenset(session for session in touching if session_start(session) >= midnight)
    since = midnight.astimezone(zone).date()
    anchor = max((start for start in block_starts if start <= midnight), default=None)
    if anchor is not None:
        # A line on the anchor is the block before's when that block began 5 hours earlier (not more than 5 hours
        # after its start): then only the lines after it are read.
        lines_from = anchor + LINE_RESOLUTION * (anchor - dt.timedelta(hours=BLOCK_HOURS) in block_starts)
        anchor_ns = _ns(anchor)
        block_files = tuple(path for path, file in scan.transcripts.items() if file.written_ns >= anchor_ns)
        return Window(since, midnight, files, whole, block_files, blocks_from=anchor, block_lines_from=lines_from,
                      begun_before=frozenset(path for path in block_files if head(path) < lines_from))
    return Window(since, midnight, files, whole, *_blocks_reach(scan, files, head))


def _blocks_reach(scan: TranscriptScan, files: Sequence[str], head: Callable[[str], dt.datetime]
                  ) -> tuple[tuple[str, ...], dt.datetime, dt.datetime | None]:
    """The transcripts the blocks report reads, the earliest line among them, and when the newest one left out was
    last written: `files`, and every other transcript last written within 5 hours before the earliest line read,
    until none is. Then every line left out is more than 5 hours older than every line read, and ccusage starts a
    block at the first line read, as it does on the full history."""
    reach = dt.timedelta(hours=BLOCK_HOURS)
    chosen = set(files)
    left = sorted((path for path in scan.transcripts if path not in chosen),
                  key=lambda path: scan.transcripts[path].written_ns)
    earliest = min(head(path) for path in files)
    while left and _mtime(scan.transcripts[left[-1]]) >= earliest - reach:
        path = left.pop()
        chosen.add(path)
        earliest = min(earliest, head(path))
    unread_before = _mtime(scan.transcripts[left[-1]]) if left else None
    return tuple(path for path in scan.transcripts if path in chosen), earliest, unread_before


LATE_TOLERANCE_NS = 1_000_000  # a line's time has milliseconds; a file time set from it may round below it


def late_lines(scan: TranscriptScan, previous: Mapping[str, Any],
               last_line_time: Callable[[str], dt.datetime | None]) -> dict[str, list[int]]:
    """Transcripts with a line written after their modification time (restored with `cp -p` or a sync tool,
    touched back), which a window would otherwise leave out: path -> [modification time, last line] (ns). Each
    transcript that changed since the last import (`previous`: its state) has its last lines read; a transcript
    stays late while it keeps that modification time."""
    seen = previous.get("transcripts")
    if not isinstance(seen, dict):
        return {}
    late = {path: entry for path, entry in (previous.get("late") or {}).items()
            if path in scan.transcripts and scan.transcripts[path].mtime_ns == entry[0]}
    for path, file in scan.transcripts.items():
        if list(seen.get(path, ())) != [file.size, file.mtime_ns]:
            last = last_line_time(path)
            if last is not None and _ns(last) > file.mtime_ns + LATE_TOLERANCE_NS:
                late[path] = [file.mtime_ns, _ns(last)]
    return late


def with_late_lines(scan: TranscriptScan, late: Mapping[str, Sequence[int]]) -> TranscriptScan:
    """The scan with each late transcript's last line as the time its lines were written by."""
    if not late:
        return scan
    return dataclasses.replace(scan, transcripts={
        path: dataclasses.replace(file, late_ns=late[path][1]) if path in late else file
        for path, file in scan.transcripts.items()})


GONE_KEPT = 1000  # gone transcripts remembered one by one; older ones only by the newest time among them


@dataclass(frozen=True)
class GoneTranscripts:
    """Transcripts this machine imported that are not where it saw them now, nor moved: deleted (Claude Code's
    cleanup, a person), hidden for a while, or unreadable now. ccusage cannot see their lines, so a period may be
    made equal to its report only when it began after the newest of them was last written (`newest`).

    `known` is False when no earlier import of this machine says which transcripts it saw (a first import, a state
    file lost): then the stored sessions tell (Store's `missing_lines_before`)."""

    floor_ns: int = 0  # every gone transcript not in `files` was last written at or before this
    files: Mapping[str, int] = field(default_factory=dict)  # path -> modification time (ns) of the newer ones
    known: bool = True
    # path -> from when (ns) an import read periods it could not prove whole because this transcript was away
    unproven: Mapping[str, int] = field(default_factory=dict)
    reach_back_ns: int | None = None  # the earliest such moment of the transcripts that are back now

    @property
    def newest(self) -> dt.datetime | None:
        newest = max([self.floor_ns, *self.files.values()])
        return dt.datetime.fromtimestamp(newest / 1e9, dt.UTC) if newest else None

    @property
    def reach_back(self) -> dt.datetime | None:
        """Where this run's window must begin: the periods left unproven while a transcript that is back now was
        away are read again, now that its lines are there (if another is away by then, it inherits them)."""
        return None if self.reach_back_ns is None else dt.datetime.fromtimestamp(self.reach_back_ns / 1e9, dt.UTC)

    def unproven_from(self, read_from: dt.datetime | None) -> GoneTranscripts:
        """These gone transcripts, each written at or after 5 hours before `read_from` (None: a full read) marked
        as keeping the periods read from then on unproven, so that its return reads them again."""
        mark = 0 if read_from is None else _ns(read_from)
        since = 0 if read_from is None else mark - BLOCK_HOURS * 3600 * 10**9
        return dataclasses.replace(self, unproven={**self.unproven, **{
            path: min(mark, self.unproven.get(path, mark)) for path, mtime in self.files.items() if mtime >= since}})


def gone_transcripts(previous: Mapping[str, Any], scan: TranscriptScan) -> GoneTranscripts:
    """What went since the last import (`previous`: its state), added to what had gone before. A transcript that
    reappears is no longer gone; one whose name is on disk in another folder was moved there (a transcript is named
    by its session's or sub-agent's id: a session moved to another project folder), not lost. All but the newest
    GONE_KEPT are kept only as `floor_ns` (Claude Code's cleanup deletes the oldest first)."""
    seen = previous.get("transcripts")
    if not isinstance(seen, dict):
        return GoneTranscripts(known=False)
    floor = previous.get("gone_floor_ns")
    if not isinstance(floor, int):  # the state of an older version: what went before it was older than what it saw
        floor = min((mtime for _, mtime in seen.values()), default=0)
    on_disk = {os.path.basename(path) for path in scan.transcripts}
    late = previous.get("late") or {}
    files = {path: max(mtime, late.get(path, (0, 0))[1]) for path, (_, mtime) in seen.items()}
    files.update(previous.get("gone") or {})
    files = {path: mtime for path, mtime in files.items()
             if path not in scan.transcripts and os.path.basename(path) not in on_disk}
    files.update({path: t.mtime_ns for path, t in scan.unreadable.items()})
    kept = dict(sorted(files.items(), key=lambda item: -item[1])[:GONE_KEPT])
    floor = max([floor, *(mtime for path, mtime in files.items() if path not in kept)])
    unproven = previous.get("unproven") or {}
    back = [mark for path, mark in unproven.items() if path not in files]
    return GoneTranscripts(floor, kept, unproven={path: mark for path, mark in unproven.items() if path in kept},
                           reach_back_ns=min(back, default=None))


def read_description(scan: TranscriptScan, window: Window | None, why: str = "") -> str:
    """For the summary: which Claude Code transcripts this run's reports read (and why all, when it says)."""
    if not scan.files:
        return ""
    unread = f"; {len(scan.unreadable):,} could not be read: {', '.join(sorted(scan.unreadable)[:3])}" if (
        scan.unreadable) else ""
    if window is None:
        return f"read all {len(scan.transcripts):,} transcripts" + (f" ({why})" if why else "") + unread
    if not window.files or window.start is None:
        return f"no transcript changed (of {scan.files:,})" + unread
    last = max(_mtime(scan.transcripts[path]) for path in window.files).astimezone(window.start.tzinfo)
    return f"read {window.since}…{last.date()} from {len(window.files):,} of {scan.files:,} transcripts" + unread


def _mtime(file: Transcript) -> dt.datetime:
    return dt.datetime.fromtimestamp(file.written_ns / 1e9, dt.UTC)


RESPONSE_ID = re.compile(rb'"id"\s*:\s*"([^"]+)"')


def response_ids(path: str) -> frozenset[bytes]:
    """Every `"id"` value of a transcript: a superset of its responses' message ids (ccusage's duplicates share one,
    `message.id`), so two transcripts with none in common share no response (empty: it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            return frozenset(RESPONSE_ID.findall(handle.read()))
    except OSError:
        return frozenset()


def last_line_time(path: str, tail_bytes: int = 65536) -> dt.datetime | None:
    """The latest line time among a transcript's last `tail_bytes` (None: none there, or it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - tail_bytes))
            lines = handle.read().split(b"\n")[1 if size > tail_bytes else 0:]
    except OSError:
        return None
    return max(filter(None, map(_line_time, lines)), default=None)


def _line_time(raw: bytes) -> dt.datetime | None:
    """A transcript line's own time (None: it has none, or is not a whole JSON line)."""
    if b'"timestamp"' not in raw:
        return None
    try:
        return parse_timestamp(json.loads(raw).get("timestamp"))
    except (ValueError, AttributeError, ShapeError):
        return None


def first_line_time(path: str, head_bytes: int = 65536) -> dt.datetime | None:
    """The earliest line time in a transcript's head: its first line with a time, however long that line is (a
    pasted log or image), and any earlier one among the lines of its first `head_bytes` (a resumed session's file
    starts with the history it replays). None when it has no such line or cannot be read."""
    earliest, read = None, 0
    try:
        with open(path, "rb") as handle:
            for raw in handle:
                read += len(raw)
                moment = _line_time(raw)
                if moment and (earliest is None or moment < earliest):
                    earliest = moment
                if earliest is not None and read >= head_bytes:
                    break
    except OSError:
        return None
    return earliest


DEFAULT_RETENTION_DAYS = 30  # Claude Code's cleanupPeriodDays when settings.json sets none


def claude_retention(dirs: Sequence[Path]) -> tuple[int, str]:
    """How many days Claude Code keeps transcripts (cleanupPeriodDays in settings.json beside projects/), and
    where that was read."""
    for projects in dirs:
        settings = projects.parent / "settings.json"
        try:
            value = json.loads(settings.read_text(encoding="utf-8")).get("cleanupPeriodDays")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value, str(settings)
    return DEFAULT_RETENTION_DAYS, "Claude Code's default"


CRON_MARKER = "# ccusage-import:import"  # what setup_cronjob.sh writes at the end of the import's crontab line


CRON_DAEMONS = frozenset({"cron", "crond", "cronie", "fcron", "busybox-crond"})  # names a cron daemon runs under
CRON_LATE = dt.timedelta(hours=2)  # an hourly job that last started longer ago than this is not running
_CRON_LOG_LINE = re.compile(r"=== (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC import (started|exit (\d+))")


def import_crontab_line(path: str | None) -> str | None:
    """This user's crontab line that runs the importer (setup_cronjob.sh's), "" if there is none, None if there is
    no crontab program on `path` to ask."""
    crontab = shutil.which("crontab", path=path)
    if not crontab:
        return None
    try:
        done = subprocess.run([crontab, "-l"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [line for line in done.stdout.splitlines() if CRON_MARKER in line] if done.returncode == 0 else []
    return lines[0] if lines else ""


def cron_daemon_running(proc: Path = Path("/proc")) -> bool | None:
    """Whether a cron daemon runs on this machine (a container, WSL or a minimal VM often has none); None where
    that cannot be seen (no /proc: macOS, whose launchd starts cron when a crontab exists)."""
    if sys.platform == "darwin" or not proc.is_dir():
        return None
    for comm in proc.glob("[0-9]*/comm"):
        with contextlib.suppress(OSError):
            if comm.read_text().strip() in CRON_DAEMONS:
                return True
    return False


def cron_import_log(crontab_line: str) -> Path | None:
    """The log the crontab line's runs write: CCUSAGE_CRON_LOG_DIR as the env file named in the line sets it
    (setup_cronjob.sh writes it there), import.log in it."""
    try:
        words = shlex.split(crontab_line, comments=True)
        env_file = Path(words[words.index("import") + 1])
        for line in env_file.read_text(encoding="utf-8").splitlines():
            if line.startswith("export CCUSAGE_CRON_LOG_DIR="):
                return Path(shlex.split(line.partition("=")[2])[0]) / "import.log"
    except (ValueError, IndexError, OSError):
        return None
    return None


def last_cron_run(log: Path) -> tuple[dt.datetime, int | None] | None:
    """When the last import cron started began, and its exit code (None while it runs), from the end of its log."""
    try:
        with log.open("rb") as handle:
            handle.seek(max(log.stat().st_size - 65536, 0))
            tail = handle.read().decode("utf-8", "replace")
    except OSError:
        return None
    started, code = None, None
    for moment, what, exit_code in _CRON_LOG_LINE.findall(tail):
        if what == "started":
            started, code = dt.datetime.strptime(moment, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC), None
        elif started is not None:
            code = int(exit_code)
    return (started, code) if started else None


def cron_problems(path: str | None, moment: dt.datetime) -> tuple[list[str], list[str]]:
    """What keeps the hourly import from running, each with its fix: no crontab line, no cron daemon to run it, no
    recent start in its log, or a failed last run."""
    line = import_crontab_line(path)
    if not line:
        return (["no hourly import in this user's crontab" if line == "" else "no crontab program here"],
                ["install the hourly import: ./setup_cronjob.sh"])
    if cron_daemon_running() is False:
        return ([f"the crontab has the hourly import, but no cron daemon runs ({'/'.join(sorted(CRON_DAEMONS))})"],
                ["start cron (Debian/Ubuntu: `sudo service cron start`; in a container or WSL, have it started at "
                 "boot), or import by other means"])
    log = cron_import_log(line)
    run = last_cron_run(log) if log else None
    if log and run is None:
        return ([f"cron has not started the import yet (no run in {log})"],
                ["wait for the next hour, or check that cron runs jobs: ./setup_cronjob.sh --first-run"])
    if run and moment - run[0] > CRON_LATE:
        return ([f"cron last started the import {human_age(moment - run[0])} ago ({run[0]:%Y-%m-%d %H:%M} UTC, "
                 f"{log})"], ["check that cron runs jobs (its own log, `crontab -l`), then ./setup_cronjob.sh "
                              "--first-run"])
    if run and run[1]:
        return ([f"the last import cron started exited {run[1]} ({log})"], [f"read the end of {log}"])
    return [], []


def _file_stat(path: Path) -> os.stat_result | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat if path.is_file() else None


# ----------------------------------------------------------------------------------------------------------------
# Pure transforms: ccusage JSON -> records (no I/O)
# ----------------------------------------------------------------------------------------------------------------

TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")
USAGE_COLUMNS = (*TOKEN_COLUMNS, "total_tokens", "total_cost", "models_count", "models_used")
SYNTHETIC_MODEL = "<synthetic>"
UINT64_MAX = 2**64 - 1


class NameHasher:
    """Keyed hashes (HMAC-SHA256) for session ids and project paths: stable, and not reversible by guessing.
    `names` remembers what each hash stands for, for this machine's own name map (never for the database)."""

    def __init__(self, key: bytes, hash_names: bool):
        self._key = key
        self.hash_names = hash_names
        self.names: dict[str, str] = {}
        # name -> hash: every run that plans hashes the project and session of each session on disk (50,000 names
        # at 25,000 sessions, ~3 µs each), and filing the journal does it once per import it files
        self._hashes: dict[str, str] = {}

    def key_of(self, name: str) -> str:
        key = self._hashes.get(name)
        if key is None:
            key = hmac.new(self._key, name.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:16]
            self._hashes[name] = key
            self.names[key] = name
        return key

    def display(self, name: str) -> str:
        return self.key_of(name) if self.hash_names else name


@dataclass(frozen=True, kw_only=True)
class UsageTable:
    """One usage table, declared once: the transforms fill it, the plan keys it, the store reads and writes it.

    `columns` are the table's own columns in schema order, between the bookkeeping every usage table has
    (`machine_name` first; `ccusage_version`, `imported_at` last). `record_key` names a row in the per-model
    child tables; a period table's record keys sort as its `period` (the column of the row's time; sessions have
    none), so the store can read a window's rows of both alone. `per_model`: token counts and cost per model
    (ccusage_model_breakdowns); blocks only list their models (ccusage_models_used). tests/test_transforms.py
    holds every spec against the schema file.
    """

    name: str
    record_type: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    record_key: Callable[[Mapping[str, Any]], str]
    per_model: bool = True
    period: str = ""

    def record(self, row: dict[str, Any], breakdowns: dict[str, dict[str, Any]] | None = None) -> Record:
        return Record(self, tuple(row[c] for c in self.key), row, self.record_key(row), breakdowns or {})


@dataclass
class Record:
    """One row of a usage table with its per-model children; `key` identifies it within a machine."""

    table: UsageTable
    key: tuple[Any, ...]
    row: dict[str, Any]
    record_key: str
    breakdowns: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return self.row["total_tokens"]


class SessionSpan(NamedTuple):
    """What a plan needs of every stored Claude Code session, also of those it does not compare: when it was
    active, how many transcript files it was stored with, whether it counts tokens (its columns' names)."""

    first_activity: dt.datetime | None
    last_activity: dt.datetime | None
    transcript_files: int
    total_tokens: int

    @classmethod
    def of(cls, record: Record) -> SessionSpan:
        return cls(record.row.get("first_activity"), record.row.get("last_activity"),
                   record.row.get("transcript_files", 0), record.total_tokens)


LostSpan = tuple[tuple[Any, ...], dt.datetime, dt.datetime]  # a session's key, first and last activity (_lost_spans)


def _block_start_key(row: Mapping[str, Any]) -> str:
    return row["start_time"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


DAILY = UsageTable(name="ccusage_usage_daily", record_type="daily", key=("agent", "date"),
                   columns=("agent", "date", *USAGE_COLUMNS), record_key=lambda row: row["date"].isoformat(),
                   period="date")
MONTHLY = UsageTable(name="ccusage_usage_monthly", record_type="monthly", key=("agent", "month"),
                     columns=("agent", "month", *USAGE_COLUMNS), record_key=lambda row: row["month"].strftime("%Y-%m"),
                     period="month")
SESSIONS = UsageTable(
    name="ccusage_usage_sessions", record_type="session", key=("agent", "project_key", "session_key"),
    columns=("agent", "project_key", "session_key", "project_name", "session_id", "first_activity", "last_activity",
             "transcript_files", *USAGE_COLUMNS, "reasoning_tokens"),
    record_key=lambda row: f"{row['project_key']}/{row['session_key']}")
BLOCKS = UsageTable(
    name="ccusage_usage_blocks", record_type="block", key=("agent", "start_time"),
    columns=("agent", "block_id", "start_time", "end_time", "actual_end_time", "is_active", "entries", *TOKEN_COLUMNS,
             "total_tokens", "cost_usd", "models_used", "burn_rate_tokens_per_minute", "burn_rate_cost_per_hour",
             "projected_total_tokens", "projected_total_cost", "projected_remaining_minutes",
             "usage_limit_reset_time"),
    record_key=_block_start_key, per_model=False, period="start_time")
HOURS = UsageTable(name="ccusage_usage_hourly", record_type="hour", key=("agent", "hour"),
                   columns=("agent", "hour", "entries", *USAGE_COLUMNS),
                   record_key=lambda row: row["hour"].strftime("%Y-%m-%dT%H:%M:%SZ"), per_model=False, period="hour")
PROJECT_DAYS = UsageTable(name="ccusage_usage_projects_daily", record_type="project_daily",
                          key=("agent", "date", "project_key"),
                          columns=("agent", "date", "project_key", "project_name", *USAGE_COLUMNS),
                          record_key=lambda row: f"{row['date'].isoformat()}/{row['project_key']}", period="date")
USAGE_TABLES = (DAILY, MONTHLY, SESSIONS, BLOCKS, HOURS, PROJECT_DAYS)


def _int(obj: Mapping[str, Any], name: str, where: str) -> int:
    value = obj.get(name, 0)
    if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0
            or value != int(value)):
        raise ShapeError(f"{where}: {name}={value!r} is not a token count")
    if value > UINT64_MAX:
        raise ShapeError(f"{where}: {name}={value!r} is more than a table can hold (2^64 - 1 tokens)")
    return int(value)


def _cost(value: Any, where: str) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ShapeError(f"{where}: cost {value!r} is not a number")
    return float(value) + 0.0  # + 0.0 turns ccusage's -0.0 into 0.0


def _fits(counts: dict[str, int], where: str) -> dict[str, int]:
    """Token counts that a UInt64 column holds: absurd input is refused by name, before anything is written."""
    for column, count in counts.items():
        if count > UINT64_MAX:
            raise ShapeError(f"{where}: {column} adds up to {count}, more than a table can hold (2^64 - 1)")
    return counts


def _tokens(obj: Mapping[str, Any], where: str) -> dict[str, int]:
    counts = {
        "input_tokens": _int(obj, "inputTokens", where),
        "output_tokens": _int(obj, "outputTokens", where),
        "cache_creation_tokens": _int(obj, "cacheCreationTokens", where),
        "cache_read_tokens": _int(obj, "cacheReadTokens", where),
    }
    counts["total_tokens"] = max(sum(counts.values()), _int(obj, "totalTokens", where))
    return _fits(counts, where)


def _models(names: Any, where: str) -> list[str]:
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ShapeError(f"{where}: models is not a list of names")
    return sorted({n for n in names if n and n != SYNTHETIC_MODEL})


def _add_up(parts: Iterable[Mapping[str, Any]], columns: Sequence[str], where: str) -> dict[str, Any]:
    """Sums of token counts (exact) and costs (math.fsum: the same float whatever the order of the parts)."""
    parts = list(parts)
    sums: dict[str, Any] = {}
    for column in columns:
        values = [part[column] for part in parts]
        sums[column] = math.fsum(values) if column in ("total_cost", "cost") else sum(values)
    return _fits({c: v for c, v in sums.items() if isinstance(v, int)}, where) | sums


def _breakdowns(items: Any, where: str) -> dict[str, dict[str, Any]]:
    if items is None:
        return {}
    if not isinstance(items, list):
        raise ShapeError(f"{where}: modelBreakdowns is not a list")
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("modelName"), str):
            raise ShapeError(f"{where}: a model breakdown has no modelName")
        values = {**_tokens(item, where), "cost": _cost(item.get("cost"), where)}
        if item["modelName"] != SYNTHETIC_MODEL and (values["total_tokens"] or values["cost"]):
            by_model[item["modelName"]].append(values)
    return {model: _add_up(parts, (*TOKEN_COLUMNS, "total_tokens", "cost"), where) for model, parts in by_model.items()}


def _usage_row(item: Mapping[str, Any], where: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Token counts, cost and models of a daily/project/session item, shared by those reports."""
    models = _models(item.get("modelsUsed", []), where)
    row = {**_tokens(item, where), "total_cost": _cost(item.get("totalCost", item.get("costUSD")), where),
           "models_count": len(models), "models_used": models}
    return row, _breakdowns(item.get("modelBreakdowns"), where)


def _date(value: Any, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ShapeError(f"{where}: {value!r} is not a date YYYY-MM-DD") from None


def project_day_records(doc: Any, hasher: NameHasher) -> list[Record]:
    """`claude daily --instances`: {projects: {dir: [rows]}}; {daily: []} when empty; bare [] from ccusage <= 18."""
    if doc == [] or (isinstance(doc, dict) and doc.get("daily") == [] and "projects" not in doc):
        return []
    if not isinstance(doc, dict) or not isinstance(doc.get("projects"), dict):
        raise ShapeError("expected an object with a `projects` map")
    records = []
    for project, items in doc["projects"].items():
        if not isinstance(items, list):
            raise ShapeError(f"project {project!r} is not a list of days")
        for item in items:
            if not isinstance(item, dict):
                raise ShapeError("a day is not an object")
            day = _date(item.get("date"), "a day")
            row, breakdowns = _usage_row(item, f"day {day}")
            project_key = hasher.key_of(project)
            records.append(PROJECT_DAYS.record(
                {"agent": CLAUDE, "date": day, "project_key": project_key, "project_name": hasher.display(project),
                 **row},
                breakdowns))
    return records


def _sum_records(table: UsageTable, base: dict[str, Any], parts: Sequence[Record], where: str) -> Record:
    """Add up the token counts, costs and per-model rows of several records into one."""
    row = {**base, **_add_up([p.row for p in parts], (*TOKEN_COLUMNS, "total_tokens", "total_cost"), where)}
    models = sorted({model for part in parts for model in part.row["models_used"]})
    row["models_used"], row["models_count"] = models, len(models)
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for part in parts:
        for model, values in part.breakdowns.items():
            by_model[model].append(values)
    return table.record(row, {model: _add_up(values, list(values[0]), where) for model, values in by_model.items()})


def daily_records(project_days: Sequence[Record]) -> list[Record]:
    """Per-day totals over all projects: exactly `claude daily`, which buckets the same lines the same way."""
    by_day: dict[tuple[str, dt.date], list[Record]] = defaultdict(list)
    for record in project_days:
        by_day[record.row["agent"], record.row["date"]].append(record)
    return [_sum_records(DAILY, {"agent": agent, "date": day}, by_day[agent, day], f"day {day}")
            for agent, day in sorted(by_day)]


def monthly_records(days: Sequence[Record]) -> list[Record]:
    """Per-month totals from the stored-and-new daily rows, so months stay whole after old transcripts are gone."""
    by_month: dict[tuple[str, dt.date], list[Record]] = defaultdict(list)
    for record in days:
        by_month[record.row["agent"], record.row["date"].replace(day=1)].append(record)
    return [_sum_records(MONTHLY, {"agent": agent, "month": month}, by_month[agent, month],
                         f"{agent} month {month:%Y-%m}") for agent, month in sorted(by_month)]


def session_records(doc: Any, hasher: NameHasher,
                    session_files: Mapping[tuple[str, str], int] | None = None) -> list[Record]:
    """`claude session`: {sessions: [...]}; ccusage <= 18 used the project folder as session id.

    `session_files` counts each session's transcript files on disk now (0 where unknown, as for ccusage <= 18).
    """
    if doc == []:
        return []
    if not isinstance(doc, dict) or not isinstance(doc.get("sessions"), list):
        raise ShapeError("expected an object with a `sessions` list")
    records = []
    for item in doc["sessions"]:
        if not isinstance(item, dict) or not isinstance(item.get("sessionId"), str):
            raise ShapeError("an item has no sessionId")
        session, project = item["sessionId"], item.get("projectPath") or ""
        if not isinstance(project, str):
            raise ShapeError(f"session {session!r}: projectPath is not a string")
        where = f"session {session}"
        row, breakdowns = _usage_row(item, where)
        first = item.get("firstActivity")
        project_key, session_key = hasher.key_of(project), hasher.key_of(session)
        records.append(SESSIONS.record({
            "agent": CLAUDE,
            "project_key": project_key,
            "session_key": session_key,
            "project_name": hasher.display(project),
            "session_id": hasher.display(session),
            "first_activity": parse_timestamp(first, where) if first else None,
            "last_activity": parse_timestamp(item.get("lastActivity"), where),
            "transcript_files": (session_files or {}).get((project, session), 0),
            **row,
            "reasoning_tokens": None,
        }, breakdowns))
    return records


def _optional_float(obj: Any, name: str) -> float | None:
    value = obj.get(name) if isinstance(obj, dict) else None
    usable = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if usable else None


def _optional_count(obj: Any, name: str, limit: int) -> int | None:
    value = _optional_float(obj, name)
    return int(value) if value is not None and 0 <= value <= limit else None


def _usage_blocks(doc: Any) -> Iterator[tuple[dict[str, Any], str, dt.datetime, dict[str, int], list[str]]]:
    """The non-gap blocks of a `claude blocks` report (gap blocks are idle time, no usage): each item, where it is
    (for errors), its start, token counts and models."""
    if not isinstance(doc, dict) or not isinstance(doc.get("blocks"), list):
        raise ShapeError("expected an object with a `blocks` list")
    for item in doc["blocks"]:
        if not isinstance(item, dict) or "startTime" not in item:
            raise ShapeError("an item has no startTime")
        if item.get("isGap"):
            continue
        where = f"block {item.get('id')}"
        counts = item.get("tokenCounts")
        if not isinstance(counts, dict):
            raise ShapeError(f"{where}: no tokenCounts")
        tokens = _tokens({"inputTokens": counts.get("inputTokens", 0), "outputTokens": counts.get("outputTokens", 0),
                          "cacheCreationTokens": counts.get("cacheCreationInputTokens", 0),
                          "cacheReadTokens": counts.get("cacheReadInputTokens", 0)}, where)
        yield item, where, parse_timestamp(item["startTime"], where), tokens, _models(item.get("models", []), where)


def block_records(doc: Any) -> list[Record]:
    """`claude blocks`: {blocks: [...]}, no totals. Which blocks are the full history's is the plan's question
    (`exact_blocks_from`)."""
    records = []
    for item, where, start, tokens, models in _usage_blocks(doc):
        burn, projection = item.get("burnRate"), item.get("projection")
        reset = item.get("usageLimitResetTime")
        records.append(BLOCKS.record({
            "agent": CLAUDE,
            "block_id": str(item.get("id") or item["startTime"]),
            "start_time": start,
            "end_time": parse_timestamp(item.get("endTime"), where),
            "actual_end_time": parse_timestamp(item["actualEndTime"], where) if item.get("actualEndTime") else None,
            "is_active": int(bool(item.get("isActive"))),
            "entries": _int(item, "entries", where),
            **tokens,
            "cost_usd": _cost(item.get("costUSD"), where),
            "models_used": models,
            "burn_rate_tokens_per_minute": _optional_float(burn, "tokensPerMinute"),
            "burn_rate_cost_per_hour": _optional_float(burn, "costPerHour"),
            "projected_total_tokens": _optional_count(projection, "totalTokens", UINT64_MAX),
            "projected_total_cost": _optional_float(projection, "totalCost"),
            "projected_remaining_minutes": _optional_count(projection, "remainingMinutes", 2**31 - 1),
            "usage_limit_reset_time": parse_timestamp(reset, where) if reset else None,
        }, {m: {} for m in models}))
    return records


def hour_records(doc: Any) -> list[Record]:
    """`claude blocks --session-length 1`: a block starts at the hour of its first line and lasts one hour, so each
    non-gap block is one clock hour, with ccusage's own tokens, cost, entries and models. One that is not (another
    ccusage) is refused rather than stored under the wrong hour."""
    records = []
    for item, where, start, tokens, models in _usage_blocks(doc):
        end = parse_timestamp(item.get("endTime"), where)
        if start != clock_hour(start) or end - start != dt.timedelta(hours=1):
            raise ShapeError(f"{where}: not one clock hour ({item['startTime']} to {item.get('endTime')})")
        records.append(HOURS.record({
            "agent": CLAUDE, "hour": start, "entries": _int(item, "entries", where), **tokens,
            "total_cost": _cost(item.get("costUSD"), where), "models_count": len(models), "models_used": models,
        }, {m: {} for m in models}))
    return records


def exact_blocks_from(doc: Any, earliest: dt.datetime | None, unread_before: dt.datetime | None
                      ) -> dt.datetime | None:
    """From which start on a `claude blocks` report's blocks are those of the full history, or None when none
    provably is.

    ccusage chains blocks from the oldest line it reads: a block starts at the hour of a line more than 5 h after
    the block's start or after the line before it. Every line the report did not read (a transcript left out of
    the window, or gone) was written at or before `unread_before`. So its first block is the full history's when
    the earliest line read (`earliest`) is more than 5 h after `unread_before`; and so is each block after a gap
    whose last line before it was written at or after `unread_before`: no unread line falls in between, so the full
    history has the same gap there. From such a block on the two chains are the same."""
    blocks = [item for item in doc["blocks"] if not item.get("isGap")]
    if not blocks:
        return None
    if unread_before is None or (earliest is not None and earliest - unread_before > dt.timedelta(hours=BLOCK_HOURS)):
        return parse_timestamp(blocks[0]["startTime"], "block startTime")
    last_line, after_gap = None, False
    for item in doc["blocks"]:
        if item.get("isGap"):
            after_gap = True
            continue
        if after_gap and last_line is not None and last_line >= unread_before:
            return parse_timestamp(item["startTime"], "block startTime")
        after_gap = False
        if item.get("actualEndTime"):
            last_line = parse_timestamp(item["actualEndTime"], "block actualEndTime")
    return None


def agent_records(doc: Any, hasher: NameHasher, wanted: Callable[[str], bool]) -> tuple[list[Record], list[str]]:
    """`ccusage session --sections daily,session --by-agent`: every other agent's days and sessions (Claude Code's
    come from its own, richer reports). Each agent is read on its own: one whose rows do not fit is named and
    skipped, and the others are still imported. Agents have no projects (project_key '') and no 5-hour blocks."""
    if not isinstance(doc, dict) or not isinstance(doc.get("daily"), list) or not isinstance(doc.get("session"), list):
        raise ShapeError("expected an object with `daily` and `session` lists")
    items: dict[str, list[tuple[bool, Any]]] = defaultdict(list)  # agent -> (is a day, item)
    for day in doc["daily"]:
        if not isinstance(day, dict) or not isinstance(day.get("agents"), list):
            raise ShapeError("a day has no `agents` list")
        for item in day["agents"]:
            items[_agent_name(item)].append((True, {**item, "date": day.get("period")}))
    for item in doc["session"]:
        items[_agent_name(item)].append((False, item))
    records, errors = [], []
    for agent in sorted(items):
        if agent == CLAUDE or not wanted(agent):
            continue
        try:
            records += [_agent_day(agent, item) if is_day else _agent_session(agent, item, hasher)
                        for is_day, item in items[agent]]
        except ShapeError as exc:
            errors.append(f"agent {agent!r}: {exc}; its rows were skipped, the other agents' imported")
    return records, errors


def _agent_name(item: Any) -> str:
    agent = item.get("agent") if isinstance(item, dict) else None
    if not isinstance(agent, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", agent):
        raise ShapeError(f"a row has no agent name: {str(agent)[:40]!r}")
    return agent


def _agent_day(agent: str, item: Mapping[str, Any]) -> Record:
    day = _date(item.get("date"), f"{agent}: a day")
    row, breakdowns = _usage_row(item, f"{agent} day {day}")
    return DAILY.record({"agent": agent, "date": day, **row}, breakdowns)


def _agent_session(agent: str, item: Mapping[str, Any], hasher: NameHasher) -> Record:
    session = item.get("period")
    if not isinstance(session, str) or not session:
        raise ShapeError("a session has no id (`period`)")
    where = f"{agent} session {session}"
    row, breakdowns = _usage_row(item, where)
    metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
    last = metadata.get("lastActivity")
    return SESSIONS.record({
        "agent": agent, "project_key": "", "session_key": hasher.key_of(session), "project_name": "",
        "session_id": hasher.display(session), "first_activity": None,
        "last_activity": parse_timestamp(last, where) if last else None, "transcript_files": 0, **row,
        "reasoning_tokens": _int(metadata, "reasoningOutputTokens", where)
        if "reasoningOutputTokens" in metadata else None,
    }, breakdowns)


def _project_day_count(doc: Any) -> int:
    projects = doc.get("projects") if isinstance(doc, dict) else None
    return sum(len(days) for days in projects.values() if isinstance(days, list)) if isinstance(projects, dict) else 0


def _list_length(name: str) -> Callable[[Any], int]:
    return lambda doc: len(doc[name]) if isinstance(doc, dict) and isinstance(doc.get(name), list) else 0


@dataclass(frozen=True)
class ParseContext:
    """What turning a report into records needs besides its JSON."""

    hasher: NameHasher
    session_files: Mapping[tuple[str, str], int] = field(default_factory=dict)
    wants: Callable[[str], bool] = lambda agent: True


ParsedReport = tuple[list[Record], list[str]]  # a report's records, and the agents it skipped (why)


@dataclass(frozen=True, kw_only=True)
class Report:
    """One ccusage report a run fetches: its arguments, how its JSON becomes records, and how big it is.

    Claude Code's days and months are derived exactly from `claude daily --instances` (per project and day, in the
    same time zone). Every other agent comes from one unified report that loads them all at once (`for_agents`):
    it runs with an empty Claude Code folder, so Claude Code's logs are read once, by its own reports.
    """

    name: str
    args: tuple[str, ...]
    unit: str
    parse: Callable[[Any, ParseContext], ParsedReport]
    size: Callable[[Any], int]  # what ccusage reported, counted without trusting the shape
    tables: tuple[UsageTable, ...]  # what it fills (months are summed from the stored days)
    for_agents: bool = False  # the unified report of every agent but Claude Code
    by_day: bool = True  # an incremental run asks for its window's days only (`--since`); blocks chain instead
    by_hour: bool = False  # ... for the days from its first clock hour on (ReadScope.hours_since)

    @property
    def command(self) -> str:
        return ("" if self.for_agents else "claude ") + " ".join(self.args)

    def covers(self, table: UsageTable, agent: str) -> bool:
        """Whether this report's rows are everything of `agent` in `table` that ccusage sees now."""
        return table in self.tables and (agent != CLAUDE if self.for_agents else agent == CLAUDE)


def _agent_rows(doc: Any) -> int:
    if not isinstance(doc, dict):
        return 0
    days = doc.get("daily") if isinstance(doc.get("daily"), list) else []
    sessions = doc.get("session") if isinstance(doc.get("session"), list) else []
    return len(sessions) + sum(len(d["agents"]) for d in days if isinstance(d, dict) and isinstance(d.get("agents"),
                                                                                                      list))


REPORTS = {report.name: report for report in (
    Report(name="projects_daily", args=("daily", "--instances"), unit="project-days",
           parse=lambda doc, context: (project_day_records(doc, context.hasher), []), size=_project_day_count,
           tables=(PROJECT_DAYS, DAILY)),
    Report(name="sessions", args=("session",), unit="sessions",
           parse=lambda doc, context: (session_records(doc, context.hasher, context.session_files), []),
           size=_list_length("sessions"), tables=(SESSIONS,)),
    Report(name="blocks", args=("blocks",), unit="blocks", parse=lambda doc, context: (block_records(doc), []),
           size=_list_length("blocks"), tables=(BLOCKS,), by_day=False),
    Report(name="hourly", args=("blocks", "--session-length", "1"), unit="one-hour blocks",
           parse=lambda doc, context: (hour_records(doc), []), size=_list_length("blocks"), tables=(HOURS,),
           by_hour=True),
    Report(name="agents", args=("session", "--sections", "daily,session", "--by-agent"),
           unit="agent days and sessions",
           parse=lambda doc, context: agent_records(doc, context.hasher, context.wants), size=_agent_rows,
           tables=(DAILY, SESSIONS), for_agents=True),
)}


def report_sizes(documents: Mapping[str, Any]) -> dict[str, int]:
    """What each report held, in its own unit (ccusage_import_runs.report_rows)."""
    return {name: REPORTS[name].size(doc) for name, doc in documents.items()}


def parse_reports(documents: Mapping[str, Any], context: ParseContext, ccusage_version: str,
                  early: Mapping[str, Future[ParsedReport]] | None = None
                  ) -> tuple[dict[str, list[Record]], list[str], list[str]]:
    """Each fetched report's records; a report of an unknown shape is named and skipped whole, an agent whose rows
    do not fit is named and skipped alone (the second and third values say so). `early`: reports already being
    parsed (with the same context) while the others were fetched."""
    def shape_error(report: Report, problem: str, outcome: str) -> str:
        return (f"`ccusage {report.command} --json` (ccusage {ccusage_version}) printed JSON of an unknown shape, "
                f"{outcome}: {problem}")

    parsed, failed, skipped = {}, [], []
    for name, doc in documents.items():
        try:
            parsed[name], agent_errors = early[name].result() if early and name in early else (
                REPORTS[name].parse(doc, context))
            skipped += [shape_error(REPORTS[name], error, "rows skipped") for error in agent_errors]
        except ShapeError as exc:
            failed.append(shape_error(REPORTS[name], str(exc), "report skipped"))
    return parsed, failed, skipped


# ----------------------------------------------------------------------------------------------------------------
# Plan: compare what ccusage reports with what is stored; history is never replaced by less
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class TablePlan:
    """What one table gets from a run. `kept` rows are stored ones that ccusage now reports with less (or that
    it reports in a way no full read would: not written). `remove` are stored rows that are provably not there:
    the store deletes them, and the stored rows a smaller one replaces (`shrunk`) where its table keeps the larger
    of two rows, before it inserts."""

    table: UsageTable
    stored: Mapping[tuple[Any, ...], Record]
    write: list[Record] = field(default_factory=list)
    remove: list[Record] = field(default_factory=list)
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    kept: int = 0

    @property
    def shrunk(self) -> set[tuple[Any, ...]]:
        """The keys of stored rows this plan writes smaller."""
        return {r.key for r in self.write if (old := self.stored.get(r.key)) is not None
                and r.total_tokens < old.total_tokens}

    def current(self, rows: Mapping[tuple[Any, ...], Record] | None = None) -> dict[tuple[Any, ...], Record]:
        """The table's rows of this machine once the plan is written (`rows`: the rows it is applied to, if not the
        ones it was planned against: the journal's, which hold more)."""
        after = {**(self.stored if rows is None else rows), **{r.key: r for r in self.write}}
        for record in self.remove:
            after.pop(record.key, None)
        return after


def rows_written(plans: Iterable[TablePlan]) -> dict[str, int]:
    """Per table, the rows a run writes or removes (ccusage_import_runs.rows_written)."""
    return {plan.table.name: len(plan.write) + len(plan.remove) for plan in plans}


@dataclass(frozen=True)
class Exact:
    """Which of Claude Code's rows this run's reports computed from every line that counts for them; the store is
    made equal to those, so a row may also shrink or go (a session moved to another project folder takes its
    project-days along). Days from `days_from` on: a window's first day, or the first that began after the newest
    gone transcript was last written. Blocks that start at or after `blocks_from` (exact_blocks_from). Hours that
    start at or after `hours_from` (first_exact_hour)."""

    days_from: dt.date | None = None  # None: no day
    blocks_from: dt.datetime | None = None  # None: no block
    hours_from: dt.datetime | None = None  # None: no hour
    months: frozenset[tuple[str, dt.date]] = frozenset()  # (agent, month) whose days shrank: summed anew

    def __call__(self, record: Record) -> bool:
        row = record.row
        if record.table is MONTHLY:
            return (row["agent"], row["month"]) in self.months
        if row["agent"] != CLAUDE:
            return False
        if record.table is BLOCKS:
            return self.blocks_from is not None and row["start_time"] >= self.blocks_from
        if record.table is HOURS:
            return self.hours_from is not None and row["hour"] >= self.hours_from
        return record.table in (DAILY, PROJECT_DAYS) and self.days_from is not None and row["date"] >= self.days_from


def first_exact_day(since: dt.date | None, missing_before: dt.datetime | None, timezone: str) -> dt.date:
    """The first day a run's reports hold whole: not before the window's first day (`since`; None: a full read),
    and begun after every line ccusage could not see (`missing_before`)."""
    first = since or dt.date.min
    if missing_before is None:
        return first
    return max(first, missing_before.astimezone(zoneinfo.ZoneInfo(timezone)).date() + dt.timedelta(days=1))


def first_exact_hour(start: dt.datetime | None, missing_before: dt.datetime | None) -> dt.datetime:
    """The first hour a run's reports hold whole. A one-hour block is the clock hour of its lines and does not
    depend on older lines, so an hour is whole when every line of it was read: every line from the window's start
    on is in a window file (`start`; None: a full read), and the hours after the one that holds the newest line
    ccusage could not see (`missing_before`) have none of those."""
    first = start or dt.datetime.min.replace(tzinfo=dt.UTC)
    if missing_before is None:
        return first
    return max(first, clock_hour(missing_before) + dt.timedelta(hours=1))


def compared_from(window: Window | None, blocks: Sequence[Record], exact: Exact) -> dict[UsageTable, Any]:
    """From which period on a window's plan needs Claude Code's stored rows of a table (a table not named: all of
    them). A stored row that its reports neither hold nor prove exact is never changed, so: days from the first
    of the month of the window's first day (a month is summed from its days), project-days from that day, hours
    from its first hour (those before it are not compared), blocks from 5 hours before the first one reported or
    proven (a stored block that overlaps one proven exact goes). Sessions have no period: plan_run reads those it
    compares by key."""
    if window is None or window.since is None or window.first_hour is None:
        return {}
    month = window.since.replace(day=1)
    bounds: dict[UsageTable, Any] = {DAILY: month, MONTHLY: month, PROJECT_DAYS: window.since, HOURS: window.first_hour}
    starts = [r.row["start_time"] for r in blocks if r.row["agent"] == CLAUDE]
    if exact.blocks_from is not None:
        starts.append(exact.blocks_from)
    if starts:
        bounds[BLOCKS] = min(starts) - dt.timedelta(hours=BLOCK_HOURS)
    return bounds


def moved_sessions(stored: Iterable[tuple[Any, ...]], incoming: Sequence[Record],
                   files: Mapping[tuple[Any, ...], int]) -> set[tuple[Any, ...]]:
    """Stored Claude Code sessions with no transcript left in their project folder that ccusage now reports under
    another one: moved there (a session id is its own; its project folder is where a person put it)."""
    elsewhere = {(record.key[0], record.key[2]): record.key[1] for record in incoming}
    return {key for key in stored if key[0] == CLAUDE and not files.get(key, 0)
            and elsewhere.get((key[0], key[2]), key[1]) != key[1]}


def missing_lines_before(spans: Mapping[tuple[Any, ...], SessionSpan], files: Mapping[tuple[Any, ...], int],
                         moved: Iterable[tuple[Any, ...]]) -> dt.datetime | None:
    """When no state says which transcripts went: the newest last activity of a stored Claude Code session with
    fewer transcripts on disk than it was stored with (and not moved). Every line ccusage cannot see is older."""
    moved = set(moved)
    return max((span.last_activity for key, span in spans.items() if key[0] == CLAUDE and key not in moved
                and span.last_activity and files.get(key, 0) < span.transcript_files), default=None)


BLOCK_STARTS_KEPT = 500  # the full history's block starts a state keeps: about 100 days of daily work


def block_starts_after(known: Sequence[dt.datetime], exact_from: dt.datetime | None, exact: Iterable[Record]
                       ) -> tuple[dt.datetime, ...]:
    """The full history's block starts a next run may begin its blocks report at: those known before this run's
    exact range, and the starts of the blocks stored in it (None: the run proved no block exact)."""
    if exact_from is None:
        return tuple(known)
    starts = {start for start in known if start < exact_from} | {record.row["start_time"] for record in exact}
    return tuple(sorted(starts)[-BLOCK_STARTS_KEPT:])


def _overlaps(start: dt.datetime, end: dt.datetime, intervals: Sequence[tuple[dt.datetime, dt.datetime]]) -> bool:
    return any(start < other_end and other_start < end for other_start, other_end in intervals)


def plan_table(table: UsageTable, incoming: Sequence[Record], stored: Mapping[tuple[Any, ...], Record],
               session_files: Mapping[tuple[Any, ...], int] | None = None,
               exact: Callable[[Record], bool] = lambda record: False,
               moved: Iterable[tuple[Any, ...]] = (), lost: Sequence[LostSpan] | None = None) -> TablePlan:
    """Decide per record: new, changed (written), unchanged, or kept (the stored row has more history).

    A row the reports computed from every line that counts for it (`exact`) is written as reported, also when
    smaller, and a stored row of that range that ccusage no longer reports is removed, as is a stored block that
    overlaps an exact one under another start. Everything else keeps history whole after Claude Code deletes old
    transcripts:
    - a row with fewer tokens than the stored one is not written, unless it is a session none of whose files has
      gone: then a resumed session's file, sorting first, took over replayed lines (ccusage credits a line to the
      first file by path), and the smaller row is the truth;
    - a session that ccusage no longer reports while all its files are there (`session_files`, by key), or whose
      files moved to another project folder (`moved`), was taken over whole: it gets a zero row; any other row that
      ccusage no longer reports stays as it is;
    - a session whose first activity moved earlier while another session of its project lost files has absorbed
      replayed lines of a deleted session: kept (`lost`: every stored session that lost files, _lost_spans; by
      default those of `stored`, which may hold only the sessions a run compares);
    - a session that grew while no line of its own was written (`_replayed_copies`) took over replayed copies whose
      fuller copies were in a deleted file, and the stored row of that file's session counts them: kept;
    - a block that is not provably the full history's is written only when it grew under the same start (the lines
      of a block that starts where the stored one starts are the full history's, less any unread): a new one is
      kept out, for it may be cut differently from the full history's.
    """
    plan = TablePlan(table, stored)
    if lost is None:
        lost = _lost_spans({key: SessionSpan.of(r) for key, r in stored.items()}, session_files) if (
            table is SESSIONS and session_files is not None) else []
    exact_blocks = [(r.row["start_time"], r.row["end_time"]) for r in incoming if table is BLOCKS and exact(r)]
    for record in incoming:
        old = stored.get(record.key)
        if old is None:
            if table is BLOCKS and not exact(record):
                plan.kept += 1
                continue
            plan.new += 1
            plan.write.append(record)
        elif record.row == old.row and record.breakdowns == old.breakdowns:
            plan.unchanged += 1
        elif exact(record):
            plan.changed += 1
            plan.write.append(record)
        elif _absorbed_history(record, old, lost) or _replayed_copies(record, old, lost) or (
                record.total_tokens < old.total_tokens and not _files_intact(record.row, old)):
            plan.kept += 1
        else:
            plan.changed += 1
            plan.write.append(record)
    reported, moved = {record.key for record in incoming}, set(moved)
    for key, old in stored.items():
        files = (session_files or {}).get(key, 0)
        if key in reported:
            continue
        if exact(old) or (exact_blocks and _overlaps(old.row["start_time"], old.row["end_time"], exact_blocks)):
            plan.changed += 1
            plan.remove.append(old)
        elif old.total_tokens and (key in moved or _files_intact({"transcript_files": files}, old)):
            plan.changed += 1
            plan.write.append(_emptied(old, files))
    return plan


def _absorbed_history(record: Record, old: Record, lost: Sequence[LostSpan]) -> bool:
    """A session whose first activity moved earlier while another session of its project has lost files took over
    lines the lost file's stored row counts. Without such a loss the stored row was incomplete (its head had not
    been read whole), and the earlier first activity is the truth."""
    new_first, old_first = record.row.get("first_activity"), old.row.get("first_activity")
    return bool(new_first and old_first and new_first < old_first) and any(
        key != record.key and key[:2] == record.key[:2] and lost_first <= old_first for key, lost_first, _ in lost)


def _lost_spans(spans: Mapping[tuple[Any, ...], SessionSpan], session_files: Mapping[tuple[Any, ...], int]
                ) -> list[LostSpan]:
    """(key, first, last activity) of each stored session that counts tokens while fewer of its transcript files
    are on disk than its row records: its row still counts lines whose file ccusage no longer sees."""
    return [(key, span.first_activity, span.last_activity) for key, span in spans.items()
            if span.total_tokens and span.first_activity and span.last_activity
            and session_files.get(key, 0) < span.transcript_files]


def _replayed_copies(record: Record, old: Record, lost: Sequence[LostSpan]) -> bool:
    """A session that grew although no line of its own was written: no new file, the same first activity, and its
    last activity as stored or within the span of another session whose file has gone (lines written now are
    newer than a deleted file). ccusage keeps the largest copy of a response, so a resumed transcript's partial
    copy of a response counts only once the original's file, with the fuller copy, is deleted; the original's
    stored row counts that response already."""
    first, last, files = (record.row.get(name) for name in ("first_activity", "last_activity", "transcript_files"))
    if (record.total_tokens <= old.total_tokens or not first or not last or not files
            or files > old.row.get("transcript_files", 0) or first != old.row.get("first_activity")):
        return False
    return any(key != record.key and key[0] == record.key[0] and lost_first <= last and first <= lost_last
               and last <= max(old.row["last_activity"], lost_last) for key, lost_first, lost_last in lost)


def _files_intact(row: Mapping[str, Any], old: Record) -> bool:
    """A session whose transcript files are all still there (known only for sessions; 0 means unknown)."""
    files = row.get("transcript_files", 0)
    return files > 0 and files >= old.row.get("transcript_files", 0)


def _emptied(old: Record, files: int) -> Record:
    """A session whose every line ccusage now credits to another session: zero, so nothing counts twice."""
    row = {**old.row, **dict.fromkeys((*TOKEN_COLUMNS, "total_tokens"), 0), "total_cost": 0.0, "models_count": 0,
           "models_used": [], "transcript_files": files}
    return old.table.record(row)


def exact_blocks_start(window: Window | None, gone: GoneTranscripts, blocks: Any) -> dt.datetime | None:
    """From which start on the blocks report holds the full history's blocks (see Window, exact_blocks_from)."""
    if not blocks:
        return None
    anchor = window.blocks_from if window else None
    if anchor and (gone.newest is None or gone.newest < anchor):
        return anchor
    unread = max((t for t in (gone.newest, anchor, window.unread_before if window else None) if t), default=None)
    return exact_blocks_from(blocks, window.earliest if window else None, unread)


def exact_of(window: Window | None, gone: GoneTranscripts, blocks: Any, timezone: str) -> Exact:
    """What a run's reports hold whole (`gone` known; `blocks`: the blocks report's JSON, whose gaps tell which of
    its blocks are the full history's)."""
    return Exact(first_exact_day(window.since if window else None, gone.newest, timezone),
                 exact_blocks_start(window, gone, blocks),
                 first_exact_hour(window.first_hour if window else None, gone.newest))


def incoming_records(parsed: Mapping[str, list[Record]]) -> dict[UsageTable, list[Record]]:
    incoming: dict[UsageTable, list[Record]] = defaultdict(list)
    for records in parsed.values():
        for record in records:
            incoming[record.table].append(record)
    return incoming


@dataclass(frozen=True)
class RunPlan:
    """Every table's plan of one run, and what the next run must know: `gone` (known), the full history's block
    starts stored so far."""

    plans: list[TablePlan]
    errors: list[str]
    gone: GoneTranscripts
    block_starts: tuple[dt.datetime, ...]


# A read of stored sessions by key costs about four times as much per row as a read of every one (25,000 sessions:
# 0.39 s all, 0.37 s for 6,000 by key, 0.69 s for 12,000) and 20 ms more, once per import the journal files: so a
# plan reads them all while they are few (8,000: 0.13 s) or it compares a quarter of them or more.
SESSIONS_READ_ALL_BELOW = 8_000
SESSIONS_READ_BY_KEY_BELOW = 0.25


class RowSource(Protocol):
    """What a plan reads of the stored rows: Store, or while the journal is filed StoredRows (the rows as the
    imports filed before left them)."""

    def stored_records(self, table: UsageTable, claude_rows: Any = None) -> dict[tuple[Any, ...], Record]: ...

    def session_spans(self) -> dict[tuple[Any, ...], SessionSpan]: ...


def plan_run(source: RowSource, parsed: Mapping[str, list[Record]], files_by_key: Mapping[tuple[str, str, str], int],
             read: tuple[Window | None, set[tuple[str, str, str]] | None], gone: GoneTranscripts, blocks: Any,
             block_starts: Sequence[dt.datetime], timezone: str) -> RunPlan:
    """Every table's plan before anything is written. Each table is compared with the stored rows of the agents
    its fetched reports cover (`source.stored_records`), so an agent whose report failed keeps every row (no
    session of it is ever zeroed). Claude Code's days are summed from its project-days and every agent's months
    from the stored and new days, so a value no table can hold stops that whole chain, never half of it. In an
    incremental run only the Claude Code sessions the window holds whole (and those that moved to them) are read
    and compared: the others were not read by ccusage, and days before the window were not reported; a full read
    reads those it reports or has files of; of every other stored session, its span (`source.session_spans`) tells
    whether it lost files. What the reports hold whole is `Exact`; `gone` comes back known (from the stored
    sessions when no state said), for the next run, as do the block starts (`block_starts`: those known so far)."""
    fetched = [REPORTS[name] for name in parsed]
    incoming = incoming_records(parsed)
    reported = {table for report in fetched for table in report.tables}
    spans = source.session_spans() if SESSIONS in reported or not gone.known else {}
    window, in_window = read  # what the window read, and the Claude Code sessions it holds whole (their keys)
    moved = moved_sessions(spans, incoming[SESSIONS], files_by_key)
    if not gone.known:
        missing = missing_lines_before(spans, files_by_key, moved)
        gone = GoneTranscripts(_ns(missing) if missing else 0)
    exact = exact_of(window, gone, blocks, timezone)
    # Sessions read whole: those a window holds whole, or on a full read those reported or with a file on disk (a
    # stored session neither reported nor on disk is left as it is), and those moved to them; all of them where
    # that costs less.
    compared = in_window if in_window is not None else {
        r.key for r in incoming[SESSIONS] if r.key[0] == CLAUDE} | set(files_by_key)
    wanted = (compared | moved) & spans.keys()
    by_key = len(spans) >= SESSIONS_READ_ALL_BELOW and len(wanted) < len(spans) * SESSIONS_READ_BY_KEY_BELOW
    claude_rows = {**compared_from(window, incoming[BLOCKS], exact), SESSIONS: frozenset(wanted) if by_key else None}
    stored = {table: source.stored_records(table, claude_rows.get(table)) for table in USAGE_TABLES
              if table in reported}
    lost = _lost_spans(spans, files_by_key)

    def plan(table: UsageTable, records: Sequence[Record], files: Mapping[Any, int] | None = None) -> TablePlan:
        def read_whole(record: Record) -> bool:
            windowed = in_window is not None and table is SESSIONS and record.row["agent"] == CLAUDE
            return not windowed or record.key in in_window or record.key in moved

        covered = {key: r for key, r in stored[table].items() if read_whole(r) and any(
            f.covers(table, r.row["agent"]) for f in fetched)}
        return plan_table(table, [r for r in records if read_whole(r)], covered, files, exact, moved,
                          lost if table is SESSIONS else [])

    plans, errors = [], []
    if DAILY in stored:
        try:
            days = plan(DAILY, [*daily_records(incoming[PROJECT_DAYS]), *incoming[DAILY]])
            all_days = {**stored[DAILY], **{r.key: r for r in days.write}}
            for record in days.remove:
                del all_days[record.key]
            shrank = frozenset((key[0], key[1].replace(day=1)) for key in {r.key for r in days.remove} | days.shrunk)
            months = plan_table(MONTHLY, monthly_records(list(all_days.values())),
                                source.stored_records(MONTHLY, claude_rows.get(MONTHLY)),
                                exact=dataclasses.replace(exact, months=shrank))
            plans += [plan(PROJECT_DAYS, incoming[PROJECT_DAYS])] if PROJECT_DAYS in stored else []
            plans += [days, months]
        except ShapeError as exc:
            errors.append(f"days and months not imported: {exc}")
    if SESSIONS in reported:
        plans.append(plan(SESSIONS, incoming[SESSIONS], files_by_key))
    if BLOCKS in stored:
        plans.append(plan(BLOCKS, incoming[BLOCKS]))
    if HOURS in stored:  # a window's hours before its start hold only its files' lines: not compared at all
        plans.append(plan(HOURS, [r for r in incoming[HOURS] if window is None or exact(r)]))
    return RunPlan(plans, errors, *next_run_knows(window, gone, exact, incoming, block_starts))


def next_run_knows(window: Window | None, gone: GoneTranscripts, exact: Exact,
                   incoming: Mapping[UsageTable, Sequence[Record]], block_starts: Sequence[dt.datetime]
                   ) -> tuple[GoneTranscripts, tuple[dt.datetime, ...]]:
    """What a run leaves the next: its gone transcripts marked with what it read, and the block starts of the full
    history's blocks stored so far (those a run proves exact are the blocks it reported exact: a stored one in
    that range that it did not report goes)."""
    if window is None or window.read_from:
        gone = gone.unproven_from(window.read_from if window else None)
    return gone, block_starts_after(block_starts, exact.blocks_from, [r for r in incoming[BLOCKS] if exact(r)])


def plan_reports(config: Config, source: RowSource, hasher: NameHasher, documents: Mapping[str, Any],
                 session_files: Mapping[tuple[str, str], int], window: Window | None, gone: GoneTranscripts,
                 block_starts: Sequence[dt.datetime],
                 early: Mapping[str, Future[ParsedReport]] | None = None) -> tuple[RunPlan, list[str], list[str]]:
    """Turn one run's reports into records and plan them against the stored rows (`source`: the Store, or the
    journal's StoredRows), with the settings of `config` (machine, zone, agents, ccusage version). Also the
    reports that could not be parsed and the agents skipped (parse_reports)."""
    parsed, failed, skipped = parse_reports(documents, ParseContext(hasher, session_files, config.wants),
                                            config.ccusage_version, early)
    files_by_key = {(CLAUDE, hasher.key_of(project), hasher.key_of(session)): count
                    for (project, session), count in session_files.items()}
    in_window = {(CLAUDE, hasher.key_of(project), hasher.key_of(session))
                 for project, session in window.sessions} if window else None
    planned = plan_run(source, parsed, files_by_key, (window, in_window), gone, documents.get("blocks"), block_starts,
                       config.timezone)
    return planned, failed, skipped


# ----------------------------------------------------------------------------------------------------------------
# Local state: an hourly run with nothing new never starts the embedded engine
# ----------------------------------------------------------------------------------------------------------------


RUN_COLUMNS = ("run_id", "machine_name", "started_at", "finished_at", "status", "report_rows", "rows_written",
               "ccusage_version", "runner", "transcript_files", "files_fingerprint", "fetch_seconds", "write_seconds",
               "error_text")


class LocalState:
    """Two small files in the embedded store's folder (deleting the store deletes them too), or for a server in a
    folder of this machine's data directory.

    state.json: per machine, the fingerprint, summary lines, settings and transcript sizes and times of the last
    successful import: an hourly run with nothing new skips everything, one with something new reads only that.
    pending-runs.jsonl (embedded store), the journal: runs that found nothing new, and imports run with --defer
    whose reports wait there (`deferred`: what filing them needs, see journal_entry), in the order they ran;
    open_store files them into the store, and every way to read an embedded store goes through open_store, so it
    never shows less than the imports have read.
    """

    def __init__(self, folder: Path):
        self.state_file = folder / "ccusage-import-state.json"
        self.pending_file = folder / "ccusage-import-pending-runs.jsonl"
        self.names_file = folder / "ccusage-import-names.json"
        self.problem = ""  # why the state file could not be used, once read: the run then reads everything
        self._parsed: tuple[tuple[int, int, int], dict[str, Any]] | None = None  # (file version, machines)

    def names(self) -> dict[str, str]:
        """Hash -> project path or session id, for every name this machine hashed (names.json, mode 0600)."""
        try:
            names = json.loads(self.names_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in names.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(
            names, dict) else {}

    def remember_names(self, names: Mapping[str, str]) -> None:
        """Add names to the map; a name stays after its transcript is gone, like the history it names."""
        known = self.names()
        if not names or names.items() <= known.items():
            return
        private_folder(self.names_file.parent)
        write_private(self.names_file, json.dumps({**known, **names}).encode())

    def _machines(self) -> dict[str, Any]:
        """Every machine's state, parsed once per version of the file (3 MB of JSON for 17,000 transcripts): a run
        reads it at its start and writes it at its end, and another writer in between makes it read again."""
        try:
            with self.state_file.open("rb") as handle:
                found = os.fstat(handle.fileno())
                version = (found.st_ino, found.st_mtime_ns, found.st_size)
                if self._parsed is not None and self._parsed[0] == version:
                    return self._parsed[1]
                machines = json.loads(handle.read().decode("utf-8")).get("machines", {})
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, AttributeError, UnicodeDecodeError) as exc:
            self.problem = f"the local state file {self.state_file} could not be used: {type(exc).__name__}"
            return {}
        if not isinstance(machines, dict):
            self.problem = f"the local state file {self.state_file} was damaged"
            return {}
        self._parsed = (version, machines)
        return machines

    def last_import(self, machine: str) -> dict[str, Any]:
        """This machine's last successful import as the state file has it; whatever part of it is damaged is left
        out (and `problem` says so), so the run reads everything."""
        last = self._machines().get(machine, {})
        last = last if isinstance(last, dict) else {}

        def pairs(value: Any) -> bool:
            return isinstance(value, dict) and all(
                isinstance(t, list) and len(t) == 2 and all(type(n) is int for n in t) for t in value.values())

        def times(value: Any) -> bool:
            return isinstance(value, dict) and all(type(n) is int for n in value.values())

        valid = {
            "fingerprint": lambda v: isinstance(v, str), "settings": lambda v: isinstance(v, str),
            "summary": lambda v: isinstance(v, list) and all(isinstance(line, str) for line in v),
            "transcripts": pairs, "late": pairs,
            "gone": times, "unproven": times, "gone_floor_ns": lambda v: type(v) is int,
            "block_starts": lambda v: isinstance(v, list) and all(type(n) is int for n in v),
        }
        if self.problem or any(name in last and not check(last[name]) for name, check in valid.items()):
            self.problem = self.problem or f"the local state file {self.state_file} was damaged"
            return {}
        return last

    def remember(self, machine: str, fingerprint: str, summary: list[str], settings: str,
                 transcripts: Mapping[str, Transcript], gone: GoneTranscripts, late: Mapping[str, list[int]],
                 block_starts: Sequence[dt.datetime]) -> None:
        machines = self._machines()
        machines[machine] = {"fingerprint": fingerprint, "summary": summary, "settings": settings,
                             "transcripts": {path: [t.size, t.mtime_ns] for path, t in transcripts.items()},
                             "gone": dict(gone.files), "gone_floor_ns": gone.floor_ns, "late": dict(late),
                             "unproven": dict(gone.unproven),
                             "block_starts": [_ns(start) for start in block_starts]}
        self._save(machines)

    def forget_fingerprint(self, machine: str) -> None:
        """Make the next import of `machine` read everything (the store lacks what the state says it read)."""
        machines = self._machines()
        if isinstance(machines.get(machine), dict) and machines[machine].pop("fingerprint", None) is not None:
            self._save(machines)

    def _save(self, machines: Mapping[str, Any]) -> None:
        private_folder(self.state_file.parent)
        # Compact: json's C encoder (indent takes the pure-Python one, twice as slow on 17,000 transcripts).
        write_private(self.state_file, json.dumps({"machines": machines}, separators=(",", ":")).encode())

    def add_pending_run(self, run: Mapping[str, Any], deferred: Mapping[str, Any] | None = None) -> None:
        """Append a run to the journal, on a line of its own also after a line a crash cut short."""
        descriptor = os.open(self.pending_file, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "a+b") as handle:
            line = json.dumps({**run, "deferred": deferred} if deferred else run, default=str).encode() + b"\n"
            if handle.seek(0, os.SEEK_END):
                handle.seek(-1, os.SEEK_END)
                line = line if handle.read(1) == b"\n" else b"\n" + line
            handle.write(line)

    def pending_runs(self) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """Rows of ccusage_import_runs as add_pending_run wrote them, each with its deferred import (or None)."""
        try:
            lines = self.pending_file.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        runs = []
        for line in lines:
            try:
                run = json.loads(line)
                deferred = run.pop("deferred", None)
                run["run_id"] = uuid.UUID(run["run_id"])
                run["started_at"] = dt.datetime.fromisoformat(run["started_at"])
                run["finished_at"] = dt.datetime.fromisoformat(run["finished_at"])
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # a line cut short by a crash: the state was not saved after it, the next run reads again
            if list(run) == list(RUN_COLUMNS) and (deferred is None or isinstance(deferred, dict)):
                runs.append((run, deferred))
        return runs

    def pending_since(self) -> dt.datetime | None:
        """When the oldest run of the journal started (None: the journal is empty; a damaged line: long ago)."""
        try:
            with self.pending_file.open(encoding="utf-8") as handle:
                first = handle.readline()
        except OSError:
            return None
        try:
            return dt.datetime.fromisoformat(json.loads(first)["started_at"]) if first else None
        except (ValueError, KeyError, TypeError):
            return EPOCH

    def clear_pending_runs(self) -> None:
        self.pending_file.unlink(missing_ok=True)


JOURNAL_FILED_AFTER = dt.timedelta(hours=6)  # a --defer run opens the store once the journal's oldest run is older


def _time_text(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _time_of(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def journal_entry(previous_fingerprint: str, config: Config, fetched_documents: Mapping[str, Any], window: Window,
                  gone: GoneTranscripts, block_starts: Sequence[dt.datetime],
                  session_files: Mapping[tuple[str, str], int]) -> dict[str, Any]:
    """What filing a deferred import needs besides the store, as JSON: the reports, the settings they were read
    with, what the window read, and what the run knew of gone transcripts, block starts and session files (the
    plan's inputs; `deferred_import` reads it back). `previous_fingerprint`: the import it builds on."""
    return {"previous_fingerprint": previous_fingerprint,
            "settings": {"timezone": config.timezone, "hash_projects": config.hash_projects,
                         "agents": sorted(config.agents) if config.agents is not None else None,
                         "ccusage_version": config.ccusage_version},
            "documents": dict(fetched_documents),
            "window": {"since": window.since.isoformat() if window.since else None,
                       "start": _time_text(window.start), "sessions": sorted(window.sessions),
                       "earliest": _time_text(window.earliest), "unread_before": _time_text(window.unread_before),
                       "blocks_from": _time_text(window.blocks_from)},
            "gone": {"floor_ns": gone.floor_ns, "files": dict(gone.files), "unproven": dict(gone.unproven),
                     "reach_back_ns": gone.reach_back_ns},
            "block_starts": [_ns(start) for start in block_starts],
            "session_files": [[project, session, count] for (project, session), count in session_files.items()]}


@dataclass(frozen=True)
class DeferredImport:
    """A journal entry read back (journal_entry)."""

    previous_fingerprint: str
    settings: Mapping[str, Any]
    documents: Mapping[str, Any]
    window: Window
    gone: GoneTranscripts
    block_starts: tuple[dt.datetime, ...]
    session_files: Mapping[tuple[str, str], int]


def deferred_import(entry: Mapping[str, Any]) -> DeferredImport:
    """journal_entry's JSON as the plan takes it (KeyError, TypeError or ValueError: not such an entry)."""
    window, gone = entry["window"], entry["gone"]
    return DeferredImport(
        str(entry["previous_fingerprint"]), dict(entry["settings"]), dict(entry["documents"]),
        Window(dt.date.fromisoformat(window["since"]) if window["since"] else None, _time_of(window["start"]),
               sessions=frozenset((project, session) for project, session in window["sessions"]),
               earliest=_time_of(window["earliest"]), unread_before=_time_of(window["unread_before"]),
               blocks_from=_time_of(window["blocks_from"])),
        GoneTranscripts(int(gone["floor_ns"]), dict(gone["files"]), unproven=dict(gone["unproven"]),
                        reach_back_ns=gone["reach_back_ns"]),
        tuple(_from_ns(int(ns)) for ns in entry["block_starts"]),
        {(project, session): int(count) for project, session, count in entry["session_files"]})


# ----------------------------------------------------------------------------------------------------------------
# Store: the only code that speaks SQL
# ----------------------------------------------------------------------------------------------------------------

CHILD_TABLES = ("ccusage_model_breakdowns", "ccusage_models_used")
SCHEMA_APPLIED = "schema_applied"  # setting: a hash of the schema file and migrations last applied (apply_schema)
IN_SCOPE = "({machine:String} = '' OR machine_name = {machine:String})"  # a budget's machines: one, or ('') all


_SQL_QUOTED_OR_COMMENT = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`|--[^\n]*|/\*.*?\*/",
                                    re.S)


def statement_count(sql: str) -> int:
    """How many statements a text holds: a `;` outside quotes and comments ends one; an empty one does not count."""
    return sum(1 for part in _SQL_QUOTED_OR_COMMENT.sub(" ", sql).split(";") if part.strip())


def split_sql(text: str) -> list[str]:
    """Statements of a .sql file: `--` comment lines dropped, split at a `;` that ends a line."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in re.split(r";\s*$", "\n".join(lines), flags=re.M) if s.strip()]


@dataclass(frozen=True)
class SchemaObject:
    """A table or view the schema file declares, with its columns in order (and their types, for tables)."""

    kind: str
    columns: tuple[str, ...]
    types: Mapping[str, str] = field(default_factory=dict)
    version: str = ""  # a ReplacingMergeTree's version column: of two rows with one key, the larger stays


def expected_schema(sql: str) -> dict[str, SchemaObject]:
    """Tables and views declared in the schema file, in file order.

    A view's columns are its SELECT list's aliases (or bare column names): what ClickHouse lists for it.
    """
    schema: dict[str, SchemaObject] = {}
    for statement in split_sql(sql):
        table = re.match(r"CREATE TABLE IF NOT EXISTS (\w+)\s*\((.*)\)\s*ENGINE", statement, re.S)
        view = re.match(r"CREATE (?:OR REPLACE )?VIEW (?:IF NOT EXISTS )?(\w+) AS\s+SELECT\s(.*)", statement, re.S)
        if table:
            items = [item.split(None, 1) for item in _top_level(table.group(2))
                     if not re.match(r"(INDEX|CONSTRAINT|PROJECTION)\b", item, re.I)]
            types = {name.strip("`"): re.split(r"\s+(?:DEFAULT|MATERIALIZED|CODEC|COMMENT)\b", kind)[0].strip()
                     for name, kind in items}
            version = re.search(r"ENGINE\s*=\s*ReplacingMergeTree\((\w+)\)", statement)
            schema[table.group(1)] = SchemaObject("table", tuple(types), types, version.group(1) if version else "")
        elif view:
            names = (re.search(r"(?:\bAS\s+|^)`?(\w+)`?$", item, re.I) for item in
                     _top_level(view.group(2), stop="FROM"))
            schema[view.group(1)] = SchemaObject("view", tuple(match.group(1) for match in names if match))
    return schema


def _top_level(text: str, stop: str | None = None) -> list[str]:
    """Split at commas outside brackets and quotes; end at the keyword `stop` outside them (a SELECT's FROM)."""
    items, depth, quote, start = [], 0, "", 0
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote and text[index - 1] != "\\" else quote
        elif char in "'`\"":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif depth == 0 and char == ",":
            items.append(text[start:index])
            start = index + 1
        elif depth == 0 and stop and re.match(rf"{stop}\b", text[index:]) and not re.match(r"\w", text[index - 1]):
            text = text[:index]
            break
    items.append(text[start:])
    return [item.strip() for item in items if item.strip()]


SCHEMA = expected_schema(SCHEMA_FILE.read_text())  # every table and view, declared once: in the schema file


def schema_names(kind: str, prefix: str = "ccusage_") -> list[str]:
    """The tables (kind "table") or views ("view") the schema file declares whose name starts with `prefix`."""
    return [name for name, item in SCHEMA.items() if item.kind == kind and name.startswith(prefix)]


def utc(value: Any) -> Any:
    """A time read back in UTC, as the importer writes it: clickhouse-connect returns DateTime64('UTC') values naive,
    and a server's DateTime('UTC') values in the server's own zone (a record key made from them must not move)."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return value


def bind_type(table: str, column: str) -> str:
    """The type a parameter compared with `column` of `table` is bound as (the schema file's, less LowCardinality)."""
    return re.sub(r"^LowCardinality\((.*)\)$", r"\1", SCHEMA[table].types[column])


def _as_written(value: Any) -> Any:
    """A value read back as the importer wrote it: aware UTC times, lists for arrays."""
    return utc(list(value) if isinstance(value, tuple) else value)


def unwritable(folder: Path) -> str | None:
    """Why the embedded engine could not write in `folder` (a read-only file system, a folder or `status` file
    without write permission), or None; tried with a real file, so root on a read-only mount is caught too."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return exc.strerror
    status = folder / "status"
    return f"{status} is read-only" if status.exists() and not os.access(status, os.W_OK) else None


@contextmanager
def engine_output() -> Iterator[Callable[[], str]]:
    """Whatever chDB writes to file descriptor 2 while it starts (its own `Code: 76. DB::…` lines) is kept from the
    terminal; said() gives its first line, for the one-line error that replaces it."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        def said() -> str:
            text = os.pread(captured.fileno(), 4096, 0).decode("utf-8", "replace")
            return first_line(text) if text.strip() else ""

        os.dup2(captured.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def embedded_engine_busy(path: Path) -> bool:
    """Whether another process has the chDB store at `path` open (the engine holds a lock on its `status` file)."""
    try:
        descriptor = os.open(path / "status", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)


class Store:
    """A ClickHouse database, embedded (chDB, in this process) or a server over HTTP(S)."""

    def __init__(self, client: Any, config: Config):
        self.client = client
        self.config = config

    @classmethod
    def connect(cls, config: Config) -> Store:
        try:
            import clickhouse_connect
            from clickhouse_connect.driver import options as driver_options
            from clickhouse_connect.driver.exceptions import ClickHouseError
        except ImportError as exc:
            raise UserError(f"missing Python package ({exc.name}): run the importer with `uv run`") from None
        if "pandas" not in sys.modules:
            # The driver asks whether each insert's data is a pandas DataFrame, importing pandas where it is
            # installed (pyproject.toml keeps it out; a `pip install chdb` brings it) to ask: 0.5 s of CPU and
            # 40–90 MB per run. Rows here are lists; tell it pandas is absent.
            driver_options.pd = None
        progress = Progress(True)
        try:
            if config.embedded:
                cls._wait_for_other_programs(config, progress)
                private_folder(config.embedded_path, tighten=True)
                if problem := unwritable(config.embedded_path):
                    raise UserError(f"cannot use {config.store_description()}: the store's folder is not writable "
                                    f"({problem}); every command writes to it")
                with engine_output() as said:
                    try:
                        if config.ch_database != "default":  # every engine has `default`; a client costs ~25 queries
                            bootstrap = clickhouse_connect.get_client(dsn=f"chdb://{config.embedded_path}")
                            bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {config.ch_database}")
                            bootstrap.close()
                        client = clickhouse_connect.get_client(dsn=f"chdb://{config.embedded_path}",
                                                               database=config.ch_database)
                    except ClickHouseError as exc:
                        raise ClickHouseError(" ".join(filter(None, (said(), str(exc))))) from None
            else:
                progress.update(f"connecting to {config.store_description()} (waiting up to "
                                f"{config.ch_connect_timeout:g} s to connect, {config.ch_timeout:g} s for answers)")
                client = clickhouse_connect.get_client(
                    host=config.ch_host, port=config.ch_port, username=config.ch_user,
                    password=config.ch_password, database=config.ch_database, secure=config.ch_secure,
                    connect_timeout=config.ch_connect_timeout, send_receive_timeout=config.ch_timeout,
                )
        except (ClickHouseError, OSError) as exc:
            raise UserError(f"cannot use {config.store_description()}: {database_problem(exc, config)}") from None
        finally:
            progress.done()
        return cls(client, config)

    @staticmethod
    def _wait_for_other_programs(config: Config, progress: Progress) -> None:
        """Another program (a notebook, a process that reached the folder by another path) holds the embedded
        engine: wait for it as for our own lock, then give up with the lock's exit code."""
        deadline = time.monotonic() + config.lock_timeout
        while embedded_engine_busy(config.embedded_path):
            if time.monotonic() >= deadline:
                raise UserError(
                    f"another program has the embedded store {config.embedded_path.resolve()} open (a notebook, a "
                    f"second importer reaching it through another path?); gave up after {config.lock_timeout:g} s: "
                    "close it, or point CCUSAGE_IMPORT_DB elsewhere", EXIT_LOCKED)
            progress.update(f"waiting for another program to close {config.embedded_path}")
            time.sleep(0.2)

    @classmethod
    def open(cls, config: Config) -> Store:
        """Connect, and create or migrate the schema (open_store also files the journal)."""
        store = cls.connect(config)
        try:
            store.apply_schema()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        self.client.close()

    # -- schema -------------------------------------------------------------------------------------------------

    def apply_schema(self) -> None:
        """Bring the database to the schema file's version: a new one gets the file and is recorded at the newest
        migration; an older one gets the numbered migrations above its version first. Idempotent. Skipped (two
        small queries instead of ~25 statements) where every table and view is there and the last schema applied
        was this release's, files and migrations alike (SCHEMA_APPLIED in ccusage_settings): a release's first
        opening applies it, and a machine of another release sharing the server applies its own again."""
        schema_text = SCHEMA_FILE.read_text()
        migrations = {int(path.name[:3]): path for path in sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9]_*.sql"))}
        stamp = hashlib.sha256("\0".join([schema_text, *(f"{p.name}\0{p.read_text()}" for p in migrations.values())])
                               .encode()).hexdigest()
        _, present = self.query("SELECT name FROM system.tables WHERE database = currentDatabase() "
                                "AND name IN {names:Array(String)}", {"names": list(SCHEMA)})
        fresh = ("ccusage_schema_migrations",) not in present
        if len(present) == len(SCHEMA) and self._last_setting(SCHEMA_APPLIED) == stamp:
            return
        applied = 0 if fresh else self.schema_version()
        if not fresh:
            for number, path in migrations.items():
                if number > applied:
                    self._migrate(path.read_text(), schema_text)
                    self._record_migration(number, path.name)
        for statement in split_sql(schema_text):
            self.client.command(statement)
        if fresh:
            for number, name in {1: SCHEMA_FILE.name, **{n: p.name for n, p in migrations.items()}}.items():
                self._record_migration(number, name)
        self._put_setting(SCHEMA_APPLIED, stamp)

    def _migrate(self, migration: str, schema_text: str) -> None:
        """One migration: its `-- rebuild: TABLE` lines, then its statements."""
        for table in re.findall(r"^--\s*rebuild:\s*(\w+)\s*$", migration, re.M):
            self._rebuild(table, schema_text)
        for statement in split_sql(migration):
            self.client.command(statement)

    def _rebuild(self, table: str, schema_text: str) -> None:
        """Recreate `table` as the schema file declares it, copy every row into it, swap the two, drop the old one.
        A run cut short anywhere leaves the table whole, and running it again gives the same table."""
        create = next((s for s in split_sql(schema_text) if s.startswith(f"CREATE TABLE IF NOT EXISTS {table}\n")),
                      None)
        if create is None:
            raise UserError(f"migration rebuilds {table}, which {SCHEMA_FILE.name} does not declare")
        staging = f"{table}_rebuild"
        self.client.command(f"DROP TABLE IF EXISTS {staging}")
        self.client.command(create.replace(f"CREATE TABLE IF NOT EXISTS {table}", f"CREATE TABLE {staging}", 1))
        columns = self.columns_of([table, staging])
        common = ", ".join(c for c in columns[table] if c in columns[staging])
        self.client.command(f"INSERT INTO {staging} ({common}) SELECT {common} FROM {table}")
        self.client.command(f"EXCHANGE TABLES {table} AND {staging}")
        self.client.command(f"DROP TABLE {staging}")

    def schema_version(self) -> int:
        return int(self.client.command("SELECT max(version) FROM ccusage_schema_migrations") or 0)

    def _record_migration(self, version: int, name: str) -> None:
        self.insert("ccusage_schema_migrations", [[version, name, now()]], ["version", "name", "applied_at"])

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        """Insert with the column types the schema file declares, so the driver does not DESCRIBE the table first."""
        types = SCHEMA[table].types if table in SCHEMA else {}
        type_names = [types[c] for c in columns] if all(c in types for c in columns) else None
        self.client.insert(table, rows, column_names=list(columns), column_type_names=type_names)

    # -- settings -----------------------------------------------------------------------------------------------

    def hash_key(self, explicit: str | None) -> bytes:
        """The key every machine writing here hashes names with: kept in the database, created once.

        With CCUSAGE_HASH_KEY, only its fingerprint is stored, so a machine with another key is refused
        instead of writing rows under other identities (which would count them twice).
        """
        if explicit:
            fingerprint = key_fingerprint(explicit)
            stored = self._setting("hash_key_fingerprint")
            if self._setting("hash_key") is not None:
                raise UserError("CCUSAGE_HASH_KEY is set, but this database already has its own hash key: unset it")
            if stored is None:
                self._put_setting("hash_key_fingerprint", fingerprint)
                stored = self._setting("hash_key_fingerprint")
            if stored != fingerprint:
                raise UserError("CCUSAGE_HASH_KEY differs from the key this database's names were hashed with")
            return explicit.encode()
        if self._setting("hash_key_fingerprint") is not None:
            raise UserError("this database's names were hashed with CCUSAGE_HASH_KEY: set it to the same key")
        key = self._setting("hash_key")
        if key is None:
            self._put_setting("hash_key", secrets.token_hex(32))
            key = self._setting("hash_key")
        return bytes.fromhex(str(key))

    def keep_timezone(self, timezone: str, known: str | None) -> None:
        """A machine's days are its days in one zone: in another, the same hours would be stored again under other
        dates (and per date the larger row stays), so a change of zone is refused. `known`: the zone the local
        state recorded, for a store that predates this check."""
        name = f"timezone:{self.config.machine_name}"
        stored = self._setting(name)
        first = stored or known
        if first and first != timezone:
            raise UserError(f"CCUSAGE_TIMEZONE is {timezone}, but the history of machine {self.config.machine_name} "
                            f"was imported with {first}: its days would be counted again under other dates; set "
                            f"CCUSAGE_TIMEZONE={first} again, or import into a new database (CCUSAGE_IMPORT_DB or "
                            "CH_DATABASE)", EXIT_USAGE)
        if stored is None:
            self._put_setting(name, timezone)

    def _setting(self, name: str) -> str | None:
        rows = self.client.query(
            "SELECT value FROM ccusage_settings WHERE name = {name:String} ORDER BY created_at, value LIMIT 1",
            parameters={"name": name},
        ).result_rows
        return rows[0][0] if rows else None

    def _last_setting(self, name: str) -> str | None:
        """The value written last (a setting that changes, unlike those the first writer decides)."""
        _, rows = self.query("SELECT value FROM ccusage_settings WHERE name = {name:String} "
                             "ORDER BY created_at DESC, value LIMIT 1", {"name": name})
        return rows[0][0] if rows else None

    def _put_setting(self, name: str, value: str) -> None:
        """Stamped with the server's clock, so machines that race to create a setting all agree on the first."""
        self.client.command("INSERT INTO ccusage_settings (name, value, created_at) "
                            "SELECT {name:String}, {value:String}, now64(3)", parameters={"name": name, "value": value})

    # -- usage rows ---------------------------------------------------------------------------------------------

    def stored_records(self, table: UsageTable, claude_rows: Any = None) -> dict[tuple[Any, ...], Record]:
        """This machine's current rows of a usage table (FINAL), with their per-model children; of Claude Code's,
        if `claude_rows` is given, only those a window's plan compares: of a period table those whose period
        begins at `claude_rows` or later, of the sessions those whose key is in `claude_rows`."""
        parameters: dict[str, Any] = {"machine": self.config.machine_name, "claude": CLAUDE}
        rows = children = ""
        if claude_rows is not None and not table.period:
            parameters |= {"keys": [key[1:] for key in claude_rows], "record_keys": [
                table.record_key(dict(zip(table.key, key, strict=True))) for key in claude_rows]}
            key = ", ".join(table.key[1:])  # a session's project_key, session_key
            rows = f" AND (agent != {{claude:String}} OR ({key}) IN {{keys:Array(Tuple(String, String))}})"
            children = " AND (agent != {claude:String} OR record_key IN {record_keys:Array(String)})"
        elif claude_rows is not None:  # a period's record keys sort as its times (UsageTable)
            parameters |= {"from": claude_rows, "key_from": table.record_key(
                {**dict.fromkeys(table.key, ""), table.period: claude_rows})}
            since = f"{{from:{bind_type(table.name, table.period)}}}"
            rows = f" AND (agent != {{claude:String}} OR {table.period} >= {since})"
            children = " AND (agent != {claude:String} OR record_key >= {key_from:String})"
        result = self.client.query(f"SELECT {', '.join(table.columns)} FROM {table.name} FINAL "
                                   f"WHERE machine_name = {{machine:String}}{rows}", parameters=parameters)
        breakdowns = self._stored_children(table, parameters, children)
        as_written = [column for column in table.columns
                      if re.match(r"(Nullable\()?(DateTime|Array)", bind_type(table.name, column))]
        records = {}
        for values in result.result_rows:
            row = dict(zip(table.columns, values, strict=True))
            for column in as_written:
                row[column] = _as_written(row[column])
            record = table.record(row)
            record.breakdowns = breakdowns.get((row["agent"], record.record_key), {})
            records[record.key] = record
        return records

    def session_spans(self) -> dict[tuple[Any, ...], SessionSpan]:
        """Every stored Claude Code session of this machine, its span only: a window's plan compares few sessions
        and asks of all the others only whether they lost files (0.1 s at 25,000 sessions, where reading them whole
        with their per-model rows took 0.4 s)."""
        result = self.client.query(
            f"SELECT {', '.join((*SESSIONS.key[1:], *SessionSpan._fields))} FROM {SESSIONS.name} FINAL "
            "WHERE machine_name = {machine:String} AND agent = {claude:String}",
            parameters={"machine": self.config.machine_name, "claude": CLAUDE})
        return {(CLAUDE, project, session): SessionSpan(utc(first), utc(last), files, tokens)
                for project, session, first, last, files, tokens in result.result_rows}

    def tables_holding(self, tables: Sequence[str], machine: str, agent: str = "") -> set[str]:
        """Which of `tables` hold a row of `machine` (of its `agent`, if given): one query that reads one row of
        each."""
        of_agent = " AND agent = {agent:String}" if agent else ""
        _, rows = self.query(" UNION ALL ".join(
            f"SELECT '{table}' FROM (SELECT 1 FROM {table} WHERE machine_name = {{machine:String}}{of_agent} LIMIT 1)"
            for table in tables), {"machine": machine, "agent": agent})
        return {table for (table,) in rows}

    def _stored_children(self, table: UsageTable, parameters: Mapping[str, Any], recent: str
                         ) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
        """(agent, record key) -> model -> its token counts and cost (blocks: only which models); `recent`: the
        condition that keeps those of the rows read."""
        parameters = {**parameters, "record_type": table.record_type}
        children: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
        if not table.per_model:
            rows = self.client.query(
                "SELECT agent, record_key, model_name FROM ccusage_models_used FINAL WHERE machine_name = "
                f"{{machine:String}} AND record_type = {{record_type:String}} AND is_used = 1{recent}",
                parameters=parameters,
            ).result_rows
            for agent, record_key, model in rows:
                children[agent, record_key][model] = {}
            return children
        result = self.client.query(
            f"SELECT agent, record_key, model_name, {', '.join(BREAKDOWN_COLUMNS)} FROM ccusage_model_breakdowns FINAL "
            f"WHERE machine_name = {{machine:String}} AND record_type = {{record_type:String}}{recent}",
            parameters=parameters,
        )
        for values in result.named_results():
            owner, model = (values.pop("agent"), values.pop("record_key")), values.pop("model_name")
            if any(values.values()):  # all zero: a model that left its row
                children[owner][model] = values
        return children

    def write_records(self, plans: Sequence[TablePlan], ccusage_version: str, imported_at: dt.datetime) -> int:
        """Insert the plans' records with their children: children first, so a run cut short is redone by the next,
        each child table in one insert (an insert costs ~9 ms in chDB, whatever its size). Rows a plan removes or
        replaces by smaller ones are deleted first (a period table keeps the larger of two rows): a run cut short in
        between leaves them missing, and the next run, reading the same, writes them."""
        machine, breakdown_rows, used_rows = self.config.machine_name, [], []
        for plan in plans:
            table = plan.table
            shrunk = plan.shrunk if SCHEMA[table.name].version == "total_tokens" else set()
            self._delete(table, [*(r.key for r in plan.remove), *shrunk])
            for record in [*plan.write, *(dataclasses.replace(r, breakdowns={}) for r in plan.remove)]:
                old = plan.stored.get(record.key)
                gone = set(old.breakdowns) - set(record.breakdowns) if old else set()
                owner = [machine, record.row["agent"], table.record_type, record.record_key]
                for model in sorted(record.breakdowns) + sorted(gone):
                    used_rows.append([*owner, model, int(model not in gone), imported_at])
                    if table.per_model:
                        values = record.breakdowns.get(model) or {}
                        breakdown_rows.append([*owner, model, *(values.get(c, 0) for c in BREAKDOWN_COLUMNS),
                                               imported_at])
        child = ["machine_name", "agent", "record_type", "record_key", "model_name"]
        if breakdown_rows:
            self.insert("ccusage_model_breakdowns", breakdown_rows, [*child, *BREAKDOWN_COLUMNS, "imported_at"])
        if used_rows:
            self.insert("ccusage_models_used", used_rows, [*child, "is_used", "imported_at"])
        for plan in plans:
            rows = [[machine, *(r.row[c] for c in plan.table.columns), ccusage_version, imported_at]
                    for r in plan.write]
            if rows:
                self.insert(plan.table.name, rows, ["machine_name", *plan.table.columns, "ccusage_version",
                                                    "imported_at"])
        return sum(len(plan.write) + len(plan.remove) for plan in plans)

    def _delete(self, table: UsageTable, keys: Sequence[tuple[Any, ...]], batch: int = 100) -> None:
        """Delete this machine's rows of `keys` (lightweight DELETE, bound parameters; rare: a moved session's
        project-days, a block a window once cut wrong)."""
        for first in range(0, len(keys), batch):
            parameters: dict[str, Any] = {"machine": self.config.machine_name}
            matches = []
            for number, key in enumerate(keys[first:first + batch]):
                matches.append(" AND ".join(f"{column} = {{k{number}_{i}:{bind_type(table.name, column)}}}"
                                            for i, column in enumerate(table.key)))
                parameters.update({f"k{number}_{i}": value for i, value in enumerate(key)})
            self.client.command(f"DELETE FROM {table.name} WHERE machine_name = {{machine:String}} AND "
                                f"(({') OR ('.join(matches)}))", parameters=parameters)

    # -- runs ---------------------------------------------------------------------------------------------------

    def record_runs(self, runs: Sequence[Mapping[str, Any]]) -> None:
        """Rows of ccusage_import_runs (RUN_COLUMNS each), in one insert."""
        if runs:
            self.insert("ccusage_import_runs", [[self.config.redact(run[c]) if c == "error_text" else run[c]
                                                 for c in RUN_COLUMNS] for run in runs], RUN_COLUMNS)

    def stored_run_ids(self, run_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these runs ccusage_import_runs holds."""
        if not run_ids:
            return set()
        _, rows = self.query("SELECT run_id FROM ccusage_import_runs WHERE run_id IN {ids:Array(UUID)}",
                             {"ids": list(run_ids)})
        return {run_id for (run_id,) in rows}

    def last_import(self) -> dt.datetime | None:
        """When this machine's last import that read everything it found ended."""
        _, [(count, last)] = self.query(
            "SELECT count(), max(finished_at) FROM ccusage_import_runs WHERE machine_name = {machine:String} "
            "AND status IN ('ok', 'unchanged')", {"machine": self.config.machine_name})
        return utc(last) if count else None

    def last_successful_fingerprint(self) -> str | None:
        rows = self.client.query(
            "SELECT files_fingerprint FROM ccusage_import_runs WHERE machine_name = {machine:String} "
            "AND status IN ('ok', 'unchanged') ORDER BY started_at DESC LIMIT 1",
            parameters={"machine": self.config.machine_name},
        ).result_rows
        return rows[0][0] if rows else None

    # -- reading ------------------------------------------------------------------------------------------------

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows; a SELECT without rows still names its columns (the driver reports none then)."""
        result = self.client.query(sql, parameters=dict(parameters or {}))
        columns = list(result.column_names)
        if not columns and not result.result_rows:
            columns = self._described(sql, parameters)
        return columns, [tuple(r) for r in result.result_rows]

    def _described(self, sql: str, parameters: Mapping[str, Any] | None) -> list[str]:
        """The columns a SELECT without rows would have had."""
        if not re.match(r"\s*(SELECT|WITH)\b", sql, re.I):
            return []
        described = self.client.query(f"DESCRIBE ({sql.strip().rstrip(';')})", parameters=dict(parameters or {}))
        return [row[0] for row in described.result_rows]

    def columns_of(self, tables: Sequence[str]) -> dict[str, list[str]]:
        _, rows = self.query("SELECT table, name FROM system.columns WHERE database = currentDatabase() "
                             "AND table IN {names:Array(String)} ORDER BY table, position", {"names": list(tables)})
        columns: dict[str, list[str]] = defaultdict(list)
        for table, column in rows:
            columns[table].append(column)
        return columns

    @contextmanager
    def stream(self, sql: str, parameters: Mapping[str, Any] | None = None, seconds: float | None = None
               ) -> Iterator[tuple[list[str], Iterator[Sequence[Any]]]]:
        """Column names and the rows as the engine sends them, a block at a time (a result of any size is never
        held whole); the engine stops the query after `seconds` (max_execution_time), when given."""
        settings = {"max_execution_time": seconds} if seconds else None
        with self.client.query_row_block_stream(sql, parameters=dict(parameters or {}), settings=settings) as blocks:
            first = next(iter(blocks), None)
            if first is not None:
                yield list(blocks.source.column_names), itertools.chain(first, itertools.chain.from_iterable(blocks))
                return
        yield self._described(sql, parameters), iter(())

    def summary(self) -> dict[str, Any]:
        """All-time totals for the report after a run: this machine, all machines, top models."""
        machine = {"machine": self.config.machine_name}
        _, totals = self.query(
            "SELECT machine_name, sum(total_cost), sum(total_tokens), min(date), max(date) "
            "FROM ccusage_usage_daily FINAL GROUP BY machine_name ORDER BY machine_name")
        _, models = self.query(
            "SELECT model, sum(cost) AS cost_usd, sum(total_tokens) FROM ccusage_v_model_days "
            "WHERE machine_name = {machine:String} GROUP BY model ORDER BY cost_usd DESC, model LIMIT 5", machine)
        _, agents = self.query(
            "SELECT agent, sum(total_cost) AS cost, sum(total_tokens) FROM ccusage_usage_daily FINAL "
            "WHERE machine_name = {machine:String} GROUP BY agent ORDER BY cost DESC, agent", machine)
        _, last_runs = self.query(
            "SELECT machine_name, max(finished_at) FROM ccusage_import_runs "
            "WHERE status IN ('ok', 'unchanged', 'partial') GROUP BY machine_name")
        return {"machines": totals, "agents": agents, "models": models, "last_runs": dict(last_runs)}

    def today(self) -> dt.date:
        _, [(today,)] = self.query("SELECT today()")
        return today


BREAKDOWN_COLUMNS = (*TOKEN_COLUMNS, "total_tokens", "cost")


def database_problem(exc: BaseException, config: Config) -> str:
    """What went wrong with the database, in words a user can act on, without the password. The driver names a
    server's error (`exc.name`, `exc.code`); a connection's errors and chDB's are known by their text."""
    text, name = config.redact(str(exc)), getattr(exc, "name", None)
    if "Connection refused" in text:
        return "connection refused (is the server running, and is CH_PORT its HTTP port?)"
    if "timed out" in text.lower() or "timeout" in text.lower():
        return (f"no answer within {config.ch_timeout:g} s (check CH_HOST, CH_PORT and the network; CH_TIMEOUT "
                "sets how long to wait)")
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return f"host {config.ch_host!r} not found (check CH_HOST)"
    if name == "AUTHENTICATION_FAILED" or getattr(exc, "code", None) == 516 or "Authentication failed" in text:
        return f"authentication failed for user {config.ch_user!r} (check CH_USER and CH_PASSWORD)"
    if name == "UNKNOWN_DATABASE" or "UNKNOWN_DATABASE" in text:
        return f"database {config.ch_database!r} does not exist (create it or fix CH_DATABASE)"
    if "SSL" in text or "certificate" in text.lower():
        return "TLS failed (is the port an HTTPS port? set CH_PROTOCOL=http or https)"
    if "unrecognized data" in text.lower():
        return "the answer is not from a ClickHouse server (check CH_HOST and CH_PORT)"
    return first_line(text)


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0][:400] if lines else "unknown error"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ----------------------------------------------------------------------------------------------------------------
# Journal: imports that skipped the embedded engine (--defer), filed into the store at its next opening
# ----------------------------------------------------------------------------------------------------------------


def store_disagrees(store: Store, stored_fingerprint: str | None, expected: str | None) -> str:
    """Why an import cannot build on what is stored: a store that is not what the import that came before it left
    (`expected`: its fingerprint), or one whose hours were never filled (a store of the release before
    ccusage_usage_hourly). "" when it can."""
    if stored_fingerprint != expected:
        return "the store is not what the local state describes"
    if hours_never_filled(store):
        return "the hourly table is new: every transcript is read once to fill it"
    return ""


def hours_never_filled(store: Store) -> bool:
    """Whether this machine has Claude Code days stored but no hours (imported by a release before the hours)."""
    return store.tables_holding((DAILY.name, HOURS.name), store.config.machine_name, CLAUDE) == {DAILY.name}


@dataclass
class HeldTable:
    """A table's stored rows as filing the journal holds them: as read (`stored`: of Claude Code's those of `read`,
    what Store.stored_records was asked for, None for all), and as the deferred imports planned so far leave them
    (`rows`)."""

    read: Any
    stored: dict[tuple[Any, ...], Record]
    rows: dict[tuple[Any, ...], Record]
    removed: set[tuple[Any, ...]] = field(default_factory=set)


class StoredRows:
    """One machine's stored rows while the journal's imports are filed: each import is planned against the rows as
    the one before left them, in memory, and the store gets one write for all of them (written), as if each had
    been written in turn: a row ends as the last import left it, a smaller one replacing the stored one. A table is
    read once, and again only what was not read yet (from an earlier period on; sessions of other keys), the rows
    already changed kept; the sessions' spans are read once and follow the plans."""

    def __init__(self, store: Store):
        self.store = store
        self.tables: dict[UsageTable, HeldTable] = {}
        self.spans: dict[tuple[Any, ...], SessionSpan] | None = None

    def stored_records(self, table: UsageTable, claude_rows: Any = None) -> dict[tuple[Any, ...], Record]:
        """As Store.stored_records, as the imports planned so far leave them."""
        held = self.tables.get(table)
        if held is None:
            read = self.store.stored_records(table, claude_rows)
            held = self.tables[table] = HeldTable(claude_rows, read, dict(read))
        elif held.read is not None and (claude_rows is None or (
                claude_rows < held.read if table.period else not claude_rows <= held.read)):
            # more than was read: every row, the rows from an earlier period on, or sessions of other keys
            unread = None if claude_rows is None else claude_rows if table.period else claude_rows - held.read
            read = self.store.stored_records(table, unread)
            held.read = None if unread is None else unread if table.period else held.read | unread
            held.stored |= read  # the rows planned so far stay as planned
            held.rows |= {key: record for key, record in read.items()
                          if key not in held.rows and key not in held.removed}
        return {key: record for key, record in held.rows.items() if claude_rows is None
                or record.row["agent"] != CLAUDE or (
                    record.row[table.period] >= claude_rows if table.period else key in claude_rows)}

    def session_spans(self) -> dict[tuple[Any, ...], SessionSpan]:
        """As Store.session_spans, as the imports planned so far leave them (planned)."""
        if self.spans is None:
            self.spans = self.store.session_spans()
        return self.spans

    def planned(self, plans: Sequence[TablePlan]) -> None:
        """Leave the rows (and the sessions' spans) as these plans of one import leave them."""
        for plan in plans:
            held = self.tables[plan.table]
            held.rows = plan.current(held.rows)
            held.removed = held.removed - {r.key for r in plan.write} | {r.key for r in plan.remove}
            if plan.table is SESSIONS and self.spans is not None:
                for record in plan.remove:
                    self.spans.pop(record.key, None)
                self.spans.update((r.key, SessionSpan.of(r)) for r in plan.write if r.row["agent"] == CLAUDE)

    def written(self, ccusage_version: str) -> None:
        """Write what every import planned: each table's rows that differ from the stored ones, the stored rows
        that went (write_records also deletes first the rows a smaller one replaces)."""
        plans = []
        for table, held in self.tables.items():
            plan = TablePlan(table, held.stored, remove=[held.stored[key] for key in held.removed
                                                          if key in held.stored])
            for key, record in held.rows.items():
                old = held.stored.get(key)
                if old is None or old.row != record.row or old.breakdowns != record.breakdowns:
                    plan.write.append(record)
            plans.append(plan)
        self.store.write_records(plans, ccusage_version, now())


@dataclass
class JournalFiling:
    """What filing the journal follows from one deferred import to the next: each machine's last successful import
    (its fingerprint, as ccusage_import_runs would answer after the runs filed so far), whether its hours were
    ever filled, its stored rows, the hash key and its hashers, and the names hashed."""

    store: Store
    last: dict[str, str | None] = field(default_factory=dict)
    hours_missing: dict[str, bool] = field(default_factory=dict)
    rows: dict[str, tuple[StoredRows, str]] = field(default_factory=dict)  # machine -> its rows, ccusage version
    key: bytes | None = None
    hashers: dict[bool, NameHasher] = field(default_factory=dict)  # by hash_projects: one per setting, reused
    names: dict[str, str] = field(default_factory=dict)

    def follow(self, machine: str) -> None:
        """Start following a machine at its last successful import as stored."""
        if machine not in self.last:
            self.last[machine] = Store(self.store.client, dataclasses.replace(
                self.store.config, machine_name=machine)).last_successful_fingerprint()

    def filed(self, run: Mapping[str, Any]) -> None:
        """Follow a run recorded (Store.last_successful_fingerprint: the newest `ok` or `unchanged`)."""
        if run["status"] in ("ok", "unchanged"):
            self.last[run["machine_name"]] = run["files_fingerprint"]

    def file(self, run: dict[str, Any], deferred: DeferredImport) -> dict[str, Any] | None:
        """Plan one deferred import as its run would have, with its own settings: its row of ccusage_import_runs,
        or None when the store is not what it was read against (restored, replaced): then file_journal makes the
        next import read everything again."""
        settings, machine = deferred.settings, run["machine_name"]
        agents = settings["agents"]
        own = Store(self.store.client, dataclasses.replace(
            self.store.config, machine_name=machine, timezone=settings["timezone"],
            hash_projects=settings["hash_projects"], agents=frozenset(agents) if agents is not None else None,
            ccusage_version=settings["ccusage_version"]))
        if machine not in self.hours_missing:
            self.hours_missing[machine] = hours_never_filled(own)
        if self.last[machine] != deferred.previous_fingerprint or self.hours_missing[machine]:
            return None
        clock = time.monotonic()
        self.key = self.key or own.hash_key(own.config.hash_key)
        if own.config.hash_projects not in self.hashers:
            self.hashers[own.config.hash_projects] = NameHasher(self.key, own.config.hash_projects)
        hasher = self.hashers[own.config.hash_projects]
        rows = self.rows[machine][0] if machine in self.rows else StoredRows(own)
        self.rows[machine] = rows, own.config.ccusage_version
        planned, failed, skipped = plan_reports(own.config, rows, hasher, deferred.documents, deferred.session_files,
                                                deferred.window, deferred.gone, deferred.block_starts)
        rows.planned(planned.plans)
        self.names.update(hasher.names)
        errors = [*failed, *skipped, *planned.errors]
        return {**run, "status": "partial" if errors else run["status"],
                "rows_written": rows_written(planned.plans), "files_fingerprint": "" if errors else
                run["files_fingerprint"], "write_seconds": time.monotonic() - clock,
                "error_text": own.config.redact("\n".join(errors))}


NOT_FILED = ("kept in the journal, not filed: the store was not what this run had read against (restored or "
             "replaced since); the next import reads every transcript again")


def file_journal(store: Store) -> None:
    """File the journal's runs and deferred imports into the store in the order they ran, each deferred import
    planned against what the one before left, then write them all and empty the journal. Cut short, the next
    opening files it again, less the runs stored already (a re-import changes nothing)."""
    state = LocalState(store.config.state_dir())
    journal = state.pending_runs()
    done = store.stored_run_ids([run["run_id"] for run, _ in journal])
    filing = JournalFiling(store)
    runs: list[dict[str, Any]] = []
    behind: set[str] = set()  # machines with an import that could not be filed
    for run, entry in journal:
        machine = run["machine_name"]
        if run["run_id"] in done:
            continue
        filing.follow(machine)
        if entry is not None and machine not in behind:
            try:
                filed = filing.file(run, deferred_import(entry))
            except (KeyError, TypeError, ValueError):  # not an entry of this release
                filed = None
            if filed is None:
                behind.add(machine)
                filed = {**run, "status": "skipped", "error_text": NOT_FILED}
            run = filed
        if machine in behind:  # what it read is not stored: no run after it may claim it is
            run = {**run, "files_fingerprint": "", "rows_written": {}}
        runs.append(run)
        filing.filed(run)
    for rows, ccusage_version in filing.rows.values():
        rows.written(ccusage_version)
    for machine in behind:
        state.forget_fingerprint(machine)  # so its next import reads everything, even with nothing new
    store.record_runs(runs)
    state.remember_names(filing.names)
    state.clear_pending_runs()


def open_store(config: Config) -> Store:
    """Store.open, and for the embedded store the journal filed first: every way to read it comes here, so it never
    shows less than the imports have read."""
    store = Store.open(config)
    try:
        if config.embedded:
            file_journal(store)
    except BaseException:
        store.close()
        raise
    return store


# ----------------------------------------------------------------------------------------------------------------
# Share: every machine's rows in a folder or an S3 bucket (CCUSAGE_SHARE), written and read by the engine
# ----------------------------------------------------------------------------------------------------------------

SHARE_FORMAT = 1  # share.json's and every manifest's `format`: a reader refuses another
SHARED_TABLES = tuple(name for name in schema_names("table") if "machine_name" in SCHEMA[name].columns)
SHARE_SLOTS = ("a", "b")  # a publish writes the slot its manifest does not name, so a reader never sees it change
SHARE_HEARTBEAT = dt.timedelta(days=1)  # a machine publishes at least this often while it imports, even unchanged
SHARE_STALE = dt.timedelta(days=3)  # a machine whose last publish is older is shown as stale
# An S3 endpoint that is down or never answers is given up within seconds, not minutes (the engine's defaults retry
# for 8 minutes against a server that accepts and never answers): a failed publish is made by the next import anyway.
SHARE_S3_SETTINGS = {"s3_use_adaptive_timeouts": 0, "s3_connect_timeout_ms": 5000, "s3_request_timeout_ms": 10000,
                     "s3_retry_attempts": 0, "s3_max_single_read_retries": 0}
_SHARE_WRITE = {"engine_file_truncate_on_insert": 1, "s3_truncate_on_insert": 1}


class ShareError(Exception):
    """The share could not be read or written: missing, read-only, full, an S3 endpoint down or refusing us."""


def machine_folder(machine: str) -> str:
    """A machine's folder in the share: its name made safe for any file system, and a hash of it (two names that
    read the same once made safe stay apart)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", machine)[:60].strip("._") or "machine"
    return f"machines/{safe}-{hashlib.sha256(machine.encode()).hexdigest()[:8]}"


def table_structure(table: str) -> str:
    """The table's columns and types as the schema file declares them: the structure of its Parquet files."""
    return ", ".join(f"{column} {kind}" for column, kind in SCHEMA[table].types.items())


def share_mismatch(found: Any, fingerprint: str, timezone: str) -> str:
    """Why share.json or a manifest is not of this machine's share (another key, zone or format), or ""."""
    if not isinstance(found, dict) or found.get("format") != SHARE_FORMAT:
        return f"not a share of ccusage-import {__version__} (format {SHARE_FORMAT})"
    if found.get("key_fingerprint") != fingerprint:
        return "its names are hashed with another CCUSAGE_HASH_KEY (every machine of a share needs the same key)"
    if found.get("timezone") != timezone:
        return (f"its days are counted in {str(found.get('timezone'))[:40]!r}, this machine's in {timezone!r} "
                "(CCUSAGE_TIMEZONE must be the same on every machine of a share)")
    return ""


def parse_manifest(text: str, folder: str) -> dict[str, Any] | str:
    """A machine's manifest.json, checked: the machine it names lives in `folder`, and every file it names is one of
    its own table's slots (never a path elsewhere). A problem is returned as text."""
    def entry_valid(table: str, entry: Any) -> bool:
        files = (None, *(f"{table}.{slot}.parquet" for slot in SHARE_SLOTS))
        return (table in SHARED_TABLES and entry["file"] in files and type(entry["rows"]) is int
                and type(entry["bytes"]) is int and bool(entry["file"] or not entry["rows"]))

    try:
        manifest = json.loads(text)
        machine, tables = manifest["machine"], manifest["tables"]
        published = dt.datetime.fromisoformat(manifest["published_at"])
        valid = (isinstance(machine, str) and machine_folder(machine) == folder and machine.isprintable()
                 and 0 < len(machine) <= MACHINE_NAME_MAX and isinstance(manifest["generation"], str)
                 and published.tzinfo is not None and all(entry_valid(t, e) for t, e in tables.items()))
    except (ValueError, TypeError, KeyError, AttributeError):
        valid = False
    if not valid:
        return "not a manifest of ccusage-import (damaged, or written by something else)"
    return {**manifest, "published_at": published.astimezone(dt.UTC)}


class ShareState:
    """What this store did with the share, in a file beside the local state (deleting the store deletes it): the
    generation it last published and when, and which generation of every other machine it holds."""

    def __init__(self, folder: Path, share: ShareSetting):
        self.file = folder / "ccusage-import-share.json"
        self.share = str(share)
        try:
            found = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            found = {}
        found = found if isinstance(found, dict) and found.get("share") == self.share else {}
        self.published: dict[str, Any] = found.get("published") if isinstance(found.get("published"), dict) else {}
        self.loaded: dict[str, Any] = found.get("loaded") if isinstance(found.get("loaded"), dict) else {}
        self.restore: str = found.get("restore") if found.get("restore") in ("done", "owed") else ""
        self.store_id: str = found.get("store") if isinstance(found.get("store"), str) else uuid.uuid4().hex

    def publish_due(self, moment: dt.datetime) -> bool:
        """No publish of this store recorded (never, or the last one failed), or the last is a heartbeat old."""
        try:
            return dt.datetime.fromisoformat(self.published["at"]) < moment - SHARE_HEARTBEAT
        except (KeyError, TypeError, ValueError):
            return True

    def save(self) -> None:
        private_folder(self.file.parent)
        write_private(self.file, json.dumps({"share": self.share, "published": self.published,
                                             "loaded": self.loaded, "restore": self.restore,
                                             "store": self.store_id}, indent=1).encode())


class Share:
    """The share through the store's engine: Parquet files written and read by the engine's file() or s3() table
    functions, small JSON files (share.json, each machine's manifest.json) beside them. Every path and URL is a bound
    parameter; S3 credentials are in the process environment only while a query runs."""

    def __init__(self, store: Store, setting: ShareSetting):
        self.store = store
        self.setting = setting
        self.function = "s3" if setting.s3 else "file"

    def path(self, relative: str) -> str:
        return f"{self.setting.where}/{relative}"

    @contextmanager
    def reaching(self, what: str) -> Iterator[None]:
        """Any failure to reach the share while doing `what` as a ShareError of one line, without a secret."""
        saved = {name: os.environ.get(name) for name in self.setting.s3_env}
        os.environ.update(self.setting.s3_env)
        try:
            if not self.setting.s3 and not Path(self.setting.where).is_dir():
                raise ShareError(f"{what}: the folder does not exist (is the synced folder or the mount there?)")
            yield
        except ShareError:
            raise
        except Exception as exc:
            if not (type(exc).__module__.startswith(("clickhouse_connect", "chdb")) or isinstance(exc, OSError)):
                raise
            text = exc.strerror if isinstance(exc, OSError) and exc.strerror else first_line(str(exc))
            if errno := re.search(r"strerror: ([^.(]+)", text):  # the engine's file error: the system's words
                text = errno.group(1).strip()
            text = re.sub(r"^Code: \d+\. DB::\w+: |\s*\([A-Z_]+\)$", "", text)  # the engine's code and name
            raise ShareError(f"{what}: {self.store.config.redact(text)}") from None
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def _settings(self, writing: bool = False) -> dict[str, Any]:
        return {**(SHARE_S3_SETTINGS if self.setting.s3 else {}), **(_SHARE_WRITE if writing else {})}

    def read_json(self, relative: str) -> Any:
        """A small JSON file of the share, or None where there is none."""
        with self.reaching(f"reading {relative}"):
            if not self.setting.s3:
                try:
                    return json.loads(Path(self.path(relative)).read_text(encoding="utf-8"))
                except FileNotFoundError:
                    return None
                except (ValueError, UnicodeDecodeError):
                    return {}
            folder, _, name = relative.rpartition("/")  # a glob: an object that is not there is no error
            rows = self.store.client.query(
                "SELECT raw_blob FROM s3({url:String}, 'RawBLOB') WHERE _file = {name:String}",
                parameters={"url": self.path(f"{folder}/*.json" if folder else "*.json"), "name": name},
                settings={**self._settings(), "s3_throw_on_zero_files_match": 0}).result_rows
        try:
            return json.loads(rows[0][0]) if rows else None
        except ValueError:
            return {}

    def write_json(self, relative: str, value: Any) -> None:
        """Whole or not at all: a rename into place in a folder, a single PUT to S3."""
        text = json.dumps(value, indent=1, default=str)
        with self.reaching(f"writing {relative}"):
            if not self.setting.s3:
                private_folder(Path(self.path(relative)).parent)
                write_private(Path(self.path(relative)), text.encode())
                return
            self.store.client.command("INSERT INTO FUNCTION s3({url:String}, 'RawBLOB') SELECT {text:String}",
                                      parameters={"url": self.path(relative), "text": text},
                                      settings=self._settings(writing=True))

    def manifests(self) -> dict[str, dict[str, Any] | str]:
        """Every machine's manifest by its folder (machines/NAME-HASH), parsed, or what is wrong with it."""
        found: dict[str, str] = {}
        with self.reaching("listing its machines"):
            if not self.setting.s3:
                for path in sorted(Path(self.setting.where).glob("machines/*/manifest.json")):
                    with contextlib.suppress(FileNotFoundError):
                        found[f"machines/{path.parent.name}"] = path.read_text(encoding="utf-8", errors="replace")
            else:
                rows = self.store.client.query(
                    "SELECT _path, raw_blob FROM s3({url:String}, 'RawBLOB') ORDER BY _path",
                    parameters={"url": self.path("machines/*/manifest.json")},
                    settings={**self._settings(), "s3_throw_on_zero_files_match": 0}).result_rows
                found = {"machines/" + path.split("/")[-2]: text for path, text in rows}
        return {folder: parse_manifest(text, folder) for folder, text in found.items()}

    def write_table(self, table: str, folder: str, slot: str, machine: str) -> dict[str, Any]:
        """This machine's rows of `table` (merged: FINAL where the engine has it) as one Parquet file."""
        columns, parameters = ", ".join(SCHEMA[table].columns), {"machine": machine}
        with self.reaching(f"writing {table}"):
            [(rows,)] = self.store.client.query(f"SELECT count() FROM {table} WHERE machine_name = {{machine:String}}",
                                                parameters=parameters, settings={"final": 1}).result_rows
            if not rows:
                return {"file": None, "rows": 0, "bytes": 0}
            name = f"{table}.{slot}.parquet"
            parameters |= {"url": self.path(f"{folder}/{name}"), "structure": table_structure(table)}
            self.store.client.command(
                f"INSERT INTO FUNCTION {self.function}({{url:String}}, 'Parquet', {{structure:String}}) "
                f"SELECT {columns} FROM {table} WHERE machine_name = {{machine:String}}",
                parameters=parameters, settings={**self._settings(writing=True), "final": 1})
        try:  # the engine does not say when a full disk cut the file short: it is read back
            written, size = self.file_facts(table, f"{folder}/{name}")
        except ShareError as exc:
            raise ShareError(f"{exc} (written, but not readable back: is the share full?)") from None
        if written != rows:
            raise ShareError(f"writing {folder}/{name}: {rows} rows written, {written} read back (is the share full?)")
        return {"file": name, "rows": rows, "bytes": size}

    def file_facts(self, table: str, relative: str) -> tuple[int, int]:
        """A table's Parquet file's rows (from its footer) and bytes, as a manifest states them."""
        parameters = {"url": self.path(relative), "structure": table_structure(table)}
        with self.reaching(f"reading {relative}"):
            [(rows, size)] = self.store.client.query(
                f"SELECT count(), max(_size) FROM {self.function}({{url:String}}, 'Parquet', {{structure:String}})",
                parameters=parameters, settings=self._settings()).result_rows
        return rows, size

    def replace_rows(self, table: str, folder: str, entry: Mapping[str, Any], machine: str, held: bool) -> None:
        """Another machine's rows of `table` in the store (`held`: it has some) become those of its file (none: a
        file of no rows)."""
        parameters: dict[str, Any] = {"machine": machine}
        with self.reaching(f"loading {folder}/{entry['file']}"):
            if held:
                self.store.client.command(f"DELETE FROM {table} WHERE machine_name = {{machine:String}}",
                                          parameters=parameters)
            if entry["file"]:
                columns = ", ".join(SCHEMA[table].columns)
                parameters |= {"url": self.path(f"{folder}/{entry['file']}"), "structure": table_structure(table)}
                self.store.client.command(
                    f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {self.function}({{url:String}}, "
                    "'Parquet', {structure:String}) WHERE machine_name = {machine:String}",
                    parameters=parameters, settings=self._settings())

    def load(self, folder: str, manifest: Mapping[str, Any]) -> str:
        """A machine's rows in the store become those of its published generation; what is wrong with its files
        (nothing loaded then), or ""."""
        machine = manifest["machine"]
        entries = {table: manifest["tables"][table] for table in SHARED_TABLES if table in manifest["tables"]}
        problem = next((f"{entry['file']} is not what its manifest says (still being copied?)"
                        for table, entry in entries.items() if entry["file"] and self.file_facts(
                            table, f"{folder}/{entry['file']}") != (entry["rows"], entry["bytes"])), "")
        if not problem:
            held = self.store.tables_holding(SHARED_TABLES, machine)  # only those need the costly DELETE
            for table, entry in entries.items():
                self.replace_rows(table, folder, entry, machine, table in held)
        return problem

    def publish(self, machine: str, fingerprint: str, timezone: str, current: Any, store_id: str) -> dict[str, Any]:
        """Every table's rows of `machine` into the slot `current` (its manifest) does not name, then the manifest
        (naming the store that wrote it): a publish cut short anywhere leaves the last manifest and every file it
        names as they were."""
        folder = machine_folder(machine)
        slot = SHARE_SLOTS[1] if isinstance(current, dict) and current.get("slot") == SHARE_SLOTS[0] else SHARE_SLOTS[0]
        if not self.setting.s3:
            with self.reaching(f"creating {folder}"):
                private_folder(Path(self.path(folder)))
        tables = {table: self.write_table(table, folder, slot, machine) for table in SHARED_TABLES}
        manifest = {"format": SHARE_FORMAT, "machine": machine, "generation": uuid.uuid4().hex, "slot": slot,
                    "published_at": now().isoformat(timespec="seconds"), "key_fingerprint": fingerprint,
                    "timezone": timezone, "ccusage_import": __version__, "store": store_id, "tables": tables}
        self.write_json(f"{folder}/manifest.json", manifest)
        return manifest

    def identity(self, fingerprint: str, timezone: str, create: bool) -> str:
        """Why this machine cannot use the share (its share.json names another key or zone), or "". `create`: a
        share without share.json gets this machine's."""
        found = self.read_json("share.json")
        if found is None and create:
            self.write_json("share.json", {"format": SHARE_FORMAT, "key_fingerprint": fingerprint,
                                           "timezone": timezone, "created_at": now().isoformat(timespec="seconds")})
        return share_mismatch(found, fingerprint, timezone) if found is not None else ""

    def probe(self, machine: str) -> None:
        """Write in this machine's folder, as a publish would (a folder's probe is removed again)."""
        relative = f"{machine_folder(machine)}/check-probe.json"
        self.write_json(relative, {"checked_at": now().isoformat(timespec="seconds")})
        if not self.setting.s3:
            with self.reaching(f"removing {relative}"):
                Path(self.path(relative)).unlink()


@dataclass(frozen=True)
class ShareSync:
    """What a sync with the share did: `problem` (one line, with its exit code) when this machine's publish failed
    or was refused; `notes` for files skipped and machines gone stale; `machines`: every machine of the share."""

    problem: str = ""
    exit_code: int = EXIT_OK
    notes: tuple[str, ...] = ()
    machines: tuple[tuple[str, dt.datetime], ...] = ()


def restore_from_share(store: Store, config: Config) -> tuple[int, str]:
    """Before the first import of a store on a share: a store that holds no row of this machine (new, or wiped)
    while the share holds its published history gets that history back, so that history whose transcripts
    Claude Code has deleted since is kept (the import then reads everything over it, as over a restored store)
    instead of being published over by less. A store that already holds this machine's rows needs nothing, unless
    an earlier restore could not read the share: then its rows are replaced too (they came from the transcripts
    still there, which the full read that follows reads again). Returns the rows restored and, when the share
    could not be read, why (no publish until a restore succeeds)."""
    assert config.share is not None and config.hash_key
    share, state = Share(store, config.share), ShareState(config.state_dir(), config.share)
    if state.restore == "done":
        return 0, ""
    machine, folder = config.machine_name, machine_folder(config.machine_name)
    try:
        if state.restore != "owed" and store.tables_holding(SHARED_TABLES, machine):
            rows = 0
        else:
            manifest = share.manifests().get(folder)
            mine = isinstance(manifest, dict) and not share_mismatch(
                manifest, key_fingerprint(config.hash_key), config.timezone)
            problem = share.load(folder, manifest) if mine else ""
            if problem:
                raise ShareError(problem)
            rows = sum(entry["rows"] for entry in manifest["tables"].values()) if mine else 0
    except ShareError as exc:
        state.restore = "owed"
        state.save()
        return 0, f"this machine's published history could not be read to restore it into this store ({exc})"
    state.restore = "done"
    state.save()
    return rows, ""


def sync_share(store: Store, config: Config, changed: bool | None, withheld: str = "") -> ShareSync:
    """Publish this machine's rows when `changed` (an import wrote rows), when a publish is due or its manifest is
    not the one it published (None: a read, which never publishes); then load every other machine whose published
    generation is not the one this store holds."""
    assert config.share is not None and config.hash_key
    share, state = Share(store, config.share), ShareState(config.state_dir(), config.share)
    fingerprint, machine, where = key_fingerprint(config.hash_key), config.machine_name, f"share {config.share}"
    twin: tuple[str, ...] = ()
    try:
        manifests = share.manifests()
        if refused := share.identity(fingerprint, config.timezone, create=changed is not None):
            return ShareSync(f"{where} refused: {refused}", EXIT_USAGE)
        own = manifests.get(machine_folder(machine))
        own_generation = own.get("generation") if isinstance(own, dict) else None
        if withheld:
            raise ShareError(f"not published: {withheld}")
        if (isinstance(own, dict) and own.get("store") not in (None, state.store_id)
                and own_generation != state.published.get("generation") and state.published):
            twin = (f"⚠️ {where}: machine {machine}'s files there were written by another store at "
                    f"{own['published_at']:%Y-%m-%d %H:%M} UTC: two machines named {machine}? Give each its own "
                    "MACHINE_NAME (each publishes over the other's rows)",)
        if changed is not None and (changed or state.publish_due(now())
                                    or own_generation != state.published.get("generation")):
            state.published = {}
            state.save()  # a publish cut short is owed by the next import
            manifest = share.publish(machine, fingerprint, config.timezone, own, state.store_id)
            manifests[machine_folder(machine)] = manifest
            state.published = {"generation": manifest["generation"], "at": manifest["published_at"]}
            state.save()
    except ShareError as exc:
        if changed is None:
            return ShareSync(notes=(f"⚠️ {where}: {exc}: showing the rows loaded before",))
        return ShareSync(f"{where}: {exc}: this import is recorded; the next one publishes again", EXIT_FAILED)
    return ShareSync(notes=(*twin, *load_share(share, state, manifests, fingerprint, config)),
                     machines=tuple(sorted((m["machine"], m["published_at"]) for m in manifests.values()
                                           if isinstance(m, dict) and not share_mismatch(m, fingerprint,
                                                                                         config.timezone))))


def load_share(share: Share, state: ShareState, manifests: Mapping[str, dict[str, Any] | str], fingerprint: str,
               config: Config) -> Iterator[str]:
    """Load the other machines' new generations; yield a line for each file or machine skipped, and for each
    machine gone stale. This machine's own published copy is never read back."""
    for folder, manifest in manifests.items():
        if isinstance(manifest, str) or (mismatch := share_mismatch(manifest, fingerprint, config.timezone)):
            yield f"⚠️ share: {folder}/manifest.json skipped: {manifest if isinstance(manifest, str) else mismatch}"
            continue
        machine = manifest["machine"]
        if machine == config.machine_name:
            continue
        if now() - manifest["published_at"] > SHARE_STALE:
            yield (f"⚠️ share: machine {machine} is stale: last published "
                   f"{manifest['published_at']:%Y-%m-%d %H:%M} UTC "
                   f"({human_age(now() - manifest['published_at'])} ago)")
        if state.loaded.get(machine) == manifest["generation"]:
            continue
        try:
            problem = share.load(folder, manifest)
        except ShareError as exc:
            problem = str(exc)
        if problem:
            yield f"⚠️ share: machine {machine} not loaded ({problem}): its rows stay as loaded before"
            continue
        state.loaded[machine] = manifest["generation"]
        state.save()


# ----------------------------------------------------------------------------------------------------------------
# Locking: one writer at a time
# ----------------------------------------------------------------------------------------------------------------


@contextmanager
def run_lock(path: Path, timeout: float, purpose: str) -> Iterator[None]:
    """An exclusive lock (flock) on `path`; a second run waits up to `timeout` seconds, then names the holder."""
    private_folder(path.parent)
    with open(path, "a+", encoding="utf-8", opener=lambda name, flags: os.open(name, flags, 0o600)) as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise UserError(f"another run holds {path} ({holder}); gave up after {timeout:g} s",
                                    EXIT_LOCKED) from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}, {purpose}, since "
                     f"{now().strftime('%Y-%m-%d %H:%M:%S')} UTC\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _no_lock() -> Iterator[None]:
    yield


@contextmanager
def _reading_store(config: Config, published: dict[str, dt.datetime] | None = None) -> Iterator[Store]:
    """A store for reading: the embedded one is opened under the lock (one process at a time). With a share, the
    other machines' new rows are loaded first; `published` gets each machine's last publish."""
    with run_lock(config.lock_path(), config.lock_timeout, "query") if config.embedded else _no_lock():
        store = open_store(config)
        try:
            if config.share:  # the other machines' rows of the share, under the ordinary table names
                shared = sync_share(store, config, changed=None)
                if shared.problem:
                    raise UserError(shared.problem, shared.exit_code)
                for note in shared.notes:
                    print(config.redact(note), file=sys.stderr)
                if published is not None:
                    published.update(shared.machines)
            yield store
        finally:
            store.close()


# ----------------------------------------------------------------------------------------------------------------
# Report: what the user sees
# ----------------------------------------------------------------------------------------------------------------


def human(number: float) -> str:
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(number) >= limit:
            return f"{number / limit:.1f}{suffix}"
    return f"{number:.0f}"


TABLE_SAMPLE_ROWS = 1000  # rows a table reads before it prints: its column widths come from them


def format_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str = "table",
                 width: int | None = None) -> str:
    """Query results as one text (format_lines)."""
    return "\n".join(format_lines(columns, rows, fmt, width))


def format_lines(columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str = "table",
                 width: int | None = None) -> Iterator[str]:
    """Query results line by line as the rows come, so a result of any size is printed without being held.

    CSV (a header even with no rows) and JSON lines (`[]` for none) always carry full values. A table fits `width`
    characters (a terminal's) without ever cutting a number, a date or a column name: long text cells are cut with
    …; where even that is too wide, each row becomes a block of `column  value` lines. Its widths come from its
    first TABLE_SAMPLE_ROWS rows (a longer text further down is cut to them; a number never). Its last line says
    how to get every value whole."""
    if fmt == "json":
        empty = True
        for row in rows:
            empty = False
            yield json.dumps(dict(zip(columns, map(_plain_number, row), strict=True)), default=str,
                             ensure_ascii=False)
        if empty:
            yield "[]"
        return
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for values in itertools.chain([columns], (map(_csv_cell, row) for row in rows)):
            writer.writerow(values)
            yield buffer.getvalue()[:-1]
            buffer.seek(0)
            buffer.truncate()
        return
    rows = iter(rows)
    sample = list(itertools.islice(rows, TABLE_SAMPLE_ROWS))
    text = [[_cell_text(v) for v in row] for row in sample]
    natural = [max([len(c), *(len(r[i]) for r in text)]) for i, c in enumerate(columns)]
    cuttable = [bool(sample) and all(_cuttable(row[i], shown[i]) for row, shown in zip(sample, text, strict=True))
                for i in range(len(columns))]
    floors = [max(len(c), min(n, TEXT_CELL_FLOOR)) if cut else n
              for c, n, cut in zip(columns, natural, cuttable, strict=True)]
    every = itertools.chain(text, ([_cell_text(v) for v in row] for row in rows))
    count = 0
    if width is not None and _table_width(floors) > width:
        for count, row in enumerate(every, 1):
            yield from _record(columns, row, count, width)
        yield from textwrap.wrap(f"({count} row{'s' * (count != 1)}, one block each to fit {width} columns; "
                                 "`--format csv` gives one line per row)", width)
        return
    widths = _fit_widths(natural, floors, width)
    numeric = [all(isinstance(r[i], int | float | Decimal) or r[i] is None for r in sample) and sample
               for i in range(len(columns))]
    yield "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()
    yield "  ".join("-" * w for w in widths)
    cut = widths != natural
    for row in every:
        count += 1
        cells = [_clip(v, w) if cuttable[i] else v for i, (v, w) in enumerate(zip(row, widths, strict=True))]
        cut = cut or cells != row
        yield "  ".join(v.rjust(w) if numeric[i] else v.ljust(w) for i, (v, w) in
                        enumerate(zip(cells, widths, strict=True))).rstrip()
    note = "; long text cut with …, `--format csv` or `--format json` shows it whole" if cut else ""
    yield from textwrap.wrap(f"({count} row{'s' * (count != 1)}{note})", width or 1000)


def _csv_cell(value: Any) -> Any:
    """A cell as CSV carries it whole: lists and maps as JSON, None as empty."""
    if value is None:
        return ""
    return json.dumps(value, default=str, ensure_ascii=False) if isinstance(value, list | tuple | dict) else (
        _plain_number(value))


TEXT_CELL_FLOOR = 10  # a text column cut narrower than this no longer says which name it is
RECORD_RULE = 40  # length of the line that starts each row's block
_NUMBER_OR_TIME = re.compile(r"[-+]?[\d.,:/ TZ%$]*\d[\d.,:/ TZ%$]*")


def _cuttable(value: Any, shown: str) -> bool:
    """Whether a cell may be cut with …: text, never a number, a date or a time (a cut one reads as another)."""
    return isinstance(value, str | list | tuple) and not _NUMBER_OR_TIME.fullmatch(shown)


def _table_width(widths: Sequence[int]) -> int:
    return sum(widths) + 2 * (len(widths) - 1)


def _record(columns: Sequence[str], row: Sequence[str], number: int, width: int) -> list[str]:
    """A row as a block of `column  value` lines, for a terminal too narrow for the table: a long value wraps onto
    further lines, whole."""
    label = max(len(c) for c in columns)
    room = max(width - label - 2, 20)
    lines = [f"-- row {number} ".ljust(min(width, RECORD_RULE), "-")]
    for column, value in zip(columns, row, strict=True):
        wrapped = textwrap.wrap(value, room, break_on_hyphens=False) or [""]
        lines.append(f"{column.ljust(label)}  {wrapped[0]}".rstrip())
        lines += [" " * (label + 2) + more for more in wrapped[1:]]
    return lines


def _cell_text(value: Any) -> str:
    """A cell as a terminal shows it: short floats, times to the second, lists as `a, b`."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if math.isfinite(value) else str(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, list | tuple):
        return ", ".join(_cell_text(v) for v in value)
    return str(value)


def _fit_widths(widths: Sequence[int], floors: Sequence[int], limit: int | None) -> list[int]:
    """Column widths that fit `limit` characters (two spaces between columns): the widest give way first, none
    below its floor."""
    widths = list(widths)
    while limit is not None and _table_width(widths) > limit:
        shrinkable = [i for i in range(len(widths)) if widths[i] > floors[i]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _plain_number(value: Any) -> Any:
    """A float without binary noise (51.43546264999998 -> 51.43546265): 15 significant digits are exact for any
    sum of costs that ccusage prints."""
    return float(f"{value:.15g}") if isinstance(value, float) and math.isfinite(value) else value


class Phases(dict[str, float]):
    """Seconds per phase of a run, in the order they ran."""

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        clock = time.monotonic()
        try:
            yield
        finally:
            self[name] = self.get(name, 0.0) + time.monotonic() - clock


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """One import as it ended: what the summary prints, and (run_row) what ccusage_import_runs records."""

    run_id: uuid.UUID
    machine_name: str
    started_at: dt.datetime
    finished_at: dt.datetime
    status: str
    ccusage_version: str
    transcript_files: int
    fingerprint: str
    phases: Mapping[str, float]
    runner: str = ""
    plans: tuple[TablePlan, ...] = ()
    errors: tuple[str, ...] = ()
    report_rows: Mapping[str, int] = field(default_factory=dict)
    summary_lines: tuple[str, ...] = ()
    read: str = ""  # which transcripts were read (the window of an incremental run)
    budgets: Watched | None = None  # the budgets' state after the run, when any is set (never its exit code)
    share: ShareSync | None = None  # the publish to CCUSAGE_SHARE and the other machines loaded from it

    @property
    def exit_code(self) -> int:
        if self.status not in ("ok", "unchanged", "empty", "deferred"):
            return EXIT_FAILED
        return self.share.exit_code if self.share else EXIT_OK

    def run_row(self) -> dict[str, Any]:
        """The row of ccusage_import_runs. A run with errors records no fingerprint, so the next run retries."""
        return {
            "run_id": self.run_id, "machine_name": self.machine_name, "started_at": self.started_at,
            "finished_at": self.finished_at, "status": self.status, "report_rows": dict(self.report_rows),
            "rows_written": rows_written(self.plans),
            "ccusage_version": self.ccusage_version, "runner": self.runner, "transcript_files": self.transcript_files,
            "files_fingerprint": "" if self.errors else self.fingerprint,
            "fetch_seconds": self.phases.get("fetch", 0.0), "write_seconds": self.phases.get("write", 0.0),
            "error_text": "\n".join(self.errors),
        }


def render_summary(result: RunResult, config: Config) -> str:
    out = [f"ccusage-import {__version__}: machine {config.machine_name}, store {config.store_description()}"]
    if result.status == "unchanged":
        out.append("No transcript changed since the last import: nothing to fetch, nothing written. "
                   "Totals as of the last import:")
    elif result.plans:
        out.append(f"{'table':<30}{'new':>8}{'changed':>9}{'unchanged':>11}{'kept':>7}")
        for plan in result.plans:
            out.append(f"{plan.table.name:<30}{plan.new:>8}{plan.changed:>9}{plan.unchanged:>11}{plan.kept:>7}")
        if any(p.kept for p in result.plans):
            out.append("kept = stored rows that ccusage now reports with less history (old transcripts deleted): "
                       "the stored, fuller numbers stay.")
    if result.read:
        out.append(result.read[0].upper() + result.read[1:] + ".")
    if result.status == "deferred":
        out.append(f"Kept in the journal (--defer): the store files these reports when it is next opened (a query, "
                   f"--dashboard, an import without --defer, or a --defer run once the journal is "
                   f"{JOURNAL_FILED_AFTER.total_seconds() / 3600:g} hours old). Totals as of its last opening:")
    for error in result.errors:
        out.append(f"❌ {error}")
    if result.share:
        out.extend(([f"❌ {result.share.problem}"] if result.share.problem else []) + list(result.share.notes))
    out.extend(result.summary_lines)
    if result.budgets is not None:
        out.extend(result.budgets.lines())
    phases = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in result.phases.items())
    out.append(f"Status: {result.status} ({phases})")
    return config.redact("\n".join(out))


def summary_lines(summary: Mapping[str, Any], machine_name: str) -> list[str]:
    """All-time totals per machine (this one starred) and this machine's top models."""
    lines = []
    for machine, cost, tokens, first, last in summary.get("machines", []):
        marker = "*" if machine == machine_name else " "
        lines.append(f"{marker} {machine}: ${cost:,.2f}, {human(tokens)} tokens, {first} … {last}, "
                     f"last import {_short_time(summary.get('last_runs', {}).get(machine))}")
    if len(summary.get("agents", [])) > 1:
        lines.append("Agents on this machine: " + ", ".join(
            f"{agent} ${cost:,.2f} ({human(tokens)} tokens)" for agent, cost, tokens in summary["agents"]))
    if summary.get("models"):
        lines.append("Top models on this machine: " + ", ".join(
            f"{model} ${cost:,.2f}" for model, cost, _ in summary["models"]))
    return lines


def deletion_warning(scan: TranscriptScan, retention_days: int, moment: dt.datetime, status: str) -> list[str]:
    """One line when this run did not import everything and Claude Code deletes transcripts within 2 days."""
    if status not in ("failed", "partial"):
        return []
    soon = scan.transcripts_before(moment - dt.timedelta(days=retention_days - 2))
    if not soon:
        return []
    return [f"⚠️ {soon} transcript{'s' * (soon != 1)} not fully imported by this run will be deleted by Claude Code "
            f"within 2 days (cleanupPeriodDays {retention_days}): fix the error above and import again"]


def _short_time(value: Any) -> str:
    return utc(value).strftime("%Y-%m-%d %H:%M UTC") if isinstance(value, dt.datetime) else "never"


def readable(value: Any, names: Mapping[str, str]) -> Any:
    """A project or session hash as the name it stands for, where this machine knows it; anything else as it is."""
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, list | tuple):
        return [readable(item, names) for item in value]
    if isinstance(value, dict):
        return {key: readable(item, names) for key, item in value.items()}
    return value


def readable_row(columns: Sequence[str], row: Sequence[Any], names: Mapping[str, str]) -> list[Any]:
    """A result row with names for hashes, except in a `*_key` column whose name another column of the row already
    shows: there the key stays, so the user sees both (and can filter by either)."""
    shown = [readable(value, names) for value in row]
    for index, column in enumerate(columns):
        if column.endswith("_key") and shown[index] != row[index] and shown[index] in shown[:index] + shown[index + 1:]:
            shown[index] = row[index]
    return shown


# ----------------------------------------------------------------------------------------------------------------
# Named queries (queries.sql): a pure parser shared by --query, the tests and dashboards
# ----------------------------------------------------------------------------------------------------------------

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_QUERY_HEADER = re.compile(r"--\s*(name|description|params):(.*)")
_PARAM_DECLARATION = re.compile(rf"({_IDENTIFIER}):({_IDENTIFIER})=(.*)")
_PARAM_USE = re.compile(rf"\{{({_IDENTIFIER}):([^{{}}]*)\}}")
_INTEGER_TYPE = re.compile(r"(U?)Int(8|16|32|64)")
QUERY_HEADERS = ("name", "description", "params")
NAME_PARAMETERS = ("project", "session")  # parameters that take a name this machine shows, or its key


class QueryFileError(ValueError):
    """queries.sql breaks its format; the message names the line."""


@dataclass(frozen=True)
class QueryParam:
    """A ClickHouse query parameter a named query takes, with the default the CLI fills in."""

    name: str
    type: str
    default: str

    def __str__(self) -> str:
        return f"{self.name}:{self.type}={self.default}"


@dataclass(frozen=True)
class NamedQuery:
    """One query of queries.sql: what `--query NAME` runs and what a dashboard can offer by name."""

    name: str
    description: str
    params: tuple[QueryParam, ...]
    sql: str
    line: int


def parse_queries(text: str) -> list[NamedQuery]:
    """The named queries of a queries.sql text in file order, or QueryFileError at the first break of the format.

    A query is a `-- name:`, a `-- description:` and a `-- params:` line, then one statement that ends with `;` at
    the end of a line. Comment lines between queries are free text; anything else there is an error, so a query
    cannot lose its name unnoticed.
    """
    lines = text.splitlines()
    queries: list[NamedQuery] = []
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        header = _QUERY_HEADER.fullmatch(stripped)
        if header and header.group(1) == "name":
            query, index = _parse_query(lines, index)
            if any(q.name == query.name for q in queries):
                raise QueryFileError(f"line {query.line}: a second query is named {query.name}")
            queries.append(query)
        elif header or (stripped and not stripped.startswith("--")):
            raise QueryFileError(f"line {index + 1}: {stripped[:50]!r} is outside a query (each starts with "
                                 "`-- name:`)")
        else:
            index += 1
    return queries


def _parse_query(lines: Sequence[str], start: int) -> tuple[NamedQuery, int]:
    """The query whose `-- name:` line is lines[start], and the index of the line after its `;`."""
    fields: dict[str, str] = {}
    for offset, expected in enumerate(QUERY_HEADERS):
        header = _QUERY_HEADER.fullmatch(lines[start + offset].strip()) if start + offset < len(lines) else None
        if not header or header.group(1) != expected:
            raise QueryFileError(f"line {start + offset + 1}: expected `-- {expected}:` (query at line {start + 1})")
        fields[expected] = header.group(2).strip()
    name = fields["name"]
    if not re.fullmatch(_IDENTIFIER, name) or name == "list":
        raise QueryFileError(f"line {start + 1}: {name!r} is not a query name (letters, digits, _; not `list`)")
    if not fields["description"]:
        raise QueryFileError(f"line {start + 2}: query {name} has an empty description")
    params = _parse_params(fields["params"], f"line {start + 3}: query {name}")
    for index in range(start + len(QUERY_HEADERS), len(lines)):
        line = lines[index].strip()
        if _QUERY_HEADER.fullmatch(line):
            break
        if line.endswith(";") and not line.startswith("--"):
            sql = "\n".join(lines[start + len(QUERY_HEADERS):index + 1]).strip()[:-1].rstrip()
            if not split_sql(sql):
                raise QueryFileError(f"line {index + 1}: query {name} has no SQL")
            _check_param_use(sql, params, f"query {name} (line {start + 1})")
            return NamedQuery(name, fields["description"], params, sql, start + 1), index + 1
    raise QueryFileError(f"line {start + 1}: query {name} does not end with `;` at the end of a line")


def _parse_params(text: str, where: str) -> tuple[QueryParam, ...]:
    if text == "none":
        return ()
    params: list[QueryParam] = []
    for item in text.split(","):
        match = _PARAM_DECLARATION.fullmatch(item.strip())
        if not match:
            raise QueryFileError(f"{where}: {item.strip()!r} is not name:Type=default (or `-- params: none`)")
        param = QueryParam(*(part.strip() for part in match.groups()))
        if any(p.name == param.name for p in params):
            raise QueryFileError(f"{where}: parameter {param.name} is declared twice")
        try:
            convert_param(param, param.default)
        except ValueError as exc:
            raise QueryFileError(f"{where}: default of {param.name}: {exc}") from None
        params.append(param)
    return tuple(params)


def _check_param_use(sql: str, params: Sequence[QueryParam], where: str) -> None:
    """Every {name:Type} in the SQL is declared with that type, and every declared parameter is used."""
    declared = {p.name: p.type for p in params}
    used = set()
    for name, type_ in _PARAM_USE.findall(sql):
        if name not in declared:
            raise QueryFileError(f"{where}: uses {{{name}:{type_}}} but `-- params:` does not declare {name}")
        if type_.strip() != declared[name]:
            raise QueryFileError(f"{where}: uses {{{name}:{type_}}} but declares {name}:{declared[name]}")
        used.add(name)
    if unused := [name for name in declared if name not in used]:
        raise QueryFileError(f"{where}: declares {', '.join(unused)} but its SQL does not use it")


def convert_param(param: QueryParam, raw: str) -> Any:
    """A parameter value as the Python value of its declared type; ValueError (one line) if it does not fit."""
    integer = _INTEGER_TYPE.fullmatch(param.type)
    if integer:
        bits = int(integer.group(2))
        low, high = (0, 2**bits - 1) if integer.group(1) else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        value = _parsed(int, raw)
        if value is not None and low <= value <= high:
            return value
    elif param.type in ("Float32", "Float64"):
        value = _parsed(float, raw)
        if value is not None and math.isfinite(value):
            return value
    elif param.type == "String":
        return raw
    else:
        raise ValueError(f"type {param.type} is not supported (use String, Float32/64 or (U)Int8-64)")
    raise ValueError(f"{raw!r} is not a {param.type}")


def _parsed(kind: Callable[[str], Any], raw: str) -> Any:
    try:
        return kind(raw)
    except ValueError:
        return None


def query_parameters(query: NamedQuery, assignments: Sequence[str]) -> dict[str, Any]:
    """Values for every parameter of a query: the KEY=VALUE assignments given, the declared defaults for the rest."""
    given: dict[str, str] = {}
    for assignment in assignments:
        key, equals, value = assignment.partition("=")
        if not equals:
            raise UserError(f"--param {assignment!r}: expected KEY=VALUE", EXIT_USAGE)
        if key.strip() in given:
            raise UserError(f"--param {key.strip()} is given twice: give each parameter once", EXIT_USAGE)
        given[key.strip()] = value
    declared = {p.name: p for p in query.params}
    if unknown := sorted(set(given) - set(declared)):
        valid = ", ".join(str(p) for p in query.params) or "none"
        raise UserError(f"query {query.name} has no parameter {unknown[0]!r}; its parameters: {valid}", EXIT_USAGE)
    values = {}
    for param in query.params:
        try:
            values[param.name] = convert_param(param, given.get(param.name, param.default))
        except ValueError as exc:
            raise UserError(f"--param {param.name}: {exc}", EXIT_USAGE) from None
    return values


def find_query(queries: Sequence[NamedQuery], name: str) -> NamedQuery:
    for query in queries:
        if query.name == name:
            return query
    names = ", ".join(q.name for q in queries)
    raise UserError(f"no query named {name!r} in {QUERIES_FILE.name}; valid names: list, {names}", EXIT_USAGE)


def query_list(queries: Sequence[NamedQuery]) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Columns and rows of `--query list` as CSV or JSON."""
    return ["name", "params", "description"], [
        (q.name, ", ".join(str(p) for p in q.params) or "none", q.description) for q in queries]


def query_list_text(queries: Sequence[NamedQuery], width: int, verbose: bool = False) -> str:
    """`--query list` on a terminal: each name with its description wrapped to `width`; with --verbose, its
    parameters (name:Type=default) below it."""
    indent = max(len(q.name) for q in queries) + 2
    room = max(width - indent, 20)
    lines = []
    for query in queries:
        wrapped = textwrap.wrap(query.description, room) or [""]
        lines.append(query.name.ljust(indent) + wrapped[0])
        lines += [" " * indent + more for more in wrapped[1:]]
        if verbose:
            params = ", ".join(str(p) for p in query.params) or "none"
            lines += [" " * indent + more for more in textwrap.wrap(f"params: {params}", room)]
    hint = "" if verbose else ", `--query list --verbose` shows their parameters"
    lines += textwrap.wrap(f"({len(queries)} queries; `--query NAME --param KEY=VALUE` runs one{hint})", width)
    return "\n".join(lines)


def load_queries(path: Path = QUERIES_FILE) -> list[NamedQuery]:
    try:
        return parse_queries(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    except QueryFileError as exc:
        raise UserError(f"{path}: {exc}") from None


# ----------------------------------------------------------------------------------------------------------------
# Alerts: budgets held against every machine's usage, each breach notified once per period
# ----------------------------------------------------------------------------------------------------------------

ALERT_TITLE = "ccusage-import"
ALERT_CLAIM_SETTLE = 1.0  # seconds between a claim's insert and its read-back on a server (see ccusage_alerts)
WEBHOOK_TIMEOUT = 5.0  # seconds per attempt, and one retry after WEBHOOK_RETRY_DELAY
WEBHOOK_RETRY_DELAY = 1.0
ALERT_DEADLINE = 15.0  # seconds all webhook posts of one run may take together
DESKTOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class ActiveBlock:
    """A 5-hour block active now on one machine: its tokens so far and ccusage's projection to its end."""

    machine: str
    start: dt.datetime
    end: dt.datetime
    tokens: int
    projected: int | None


@dataclass(frozen=True)
class BudgetUsage:
    """What the store holds for the budgets' current periods, in one scope (Store.budget_usage)."""

    day: dt.date
    day_cost: Mapping[str, float]  # machine -> cost on `day`
    month_cost: Mapping[str, float]  # machine -> cost in the month of `day`
    blocks: tuple[ActiveBlock, ...] = ()
    largest_block: int = 0  # tokens of the largest finished block, the limit `max` stands for (0: none yet)


@dataclass(frozen=True)
class AlertClaim:
    """A recorded claim of a breach: which run (claim_id) of which machine notified it, and when."""

    claim_id: str
    machine: str
    at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class BudgetState:
    """One budget held against its current period: ok, exceeded, or (a block) will exceed by ccusage's projection.
    (kind, period, scope) is the breach's identity in ccusage_alerts: one notice each."""

    kind: str  # daily_cost, monthly_cost, block_tokens or block_projection
    period: str  # 2026-11-21, 2026-11, or a block's start (2026-11-21 15:00 UTC); blocks: '' when none is active
    scope: str  # all, or machine:NAME
    limit: float
    value: float  # cost, tokens, or the projected tokens
    machines: tuple[str, ...]
    status: str = "ok"  # ok, exceeded, will exceed
    limit_is_max: bool = False
    so_far: int = 0  # block_projection: the tokens used so far
    until: str = ""  # blocks: when the block ends

    @property
    def key(self) -> dict[str, str]:
        return {"kind": self.kind, "period": self.period, "scope": self.scope}

    def text(self) -> str:
        """One line: what, the value, the limit, the period, which machines."""
        who = "all machines: " + (", ".join(self.machines) or "none") if self.scope == "all" else (
            "machine " + self.scope.removeprefix("machine:"))
        if self.kind in ("daily_cost", "monthly_cost"):
            daily = self.kind == "daily_cost"
            what, limit = f"{'daily' if daily else 'monthly'} cost ${self.value:,.2f}", f"the ${self.limit:,.2f} budget"
            when = f"{'on' if daily else 'in'} {self.period}"
        elif not self.limit:
            return f"5-hour block: no finished block yet to take the max limit from ({who})"
        elif not self.period:
            return f"5-hour block: none active ({who})"
        else:
            limit = f"the {self.limit:,.0f}-token limit" + (" (max: the largest block seen)" * self.limit_is_max)
            what = f"5-hour block {self.value:,.0f} tokens"
            if self.kind == "block_projection":
                what = (f"5-hour block projected to reach {self.value:,.0f} tokens by its end at {self.until} "
                        f"(now {self.so_far:,}),")
            when = f"in the block from {self.period}"
        prefix = {"exceeded": "🚨 budget exceeded: ", "will exceed": "⚠️ budget will be exceeded: "}.get(self.status, "")
        return f"{prefix}{what} {'of' if self.status == 'ok' else 'over'} {limit} {when} ({who})"


def evaluate_budgets(budgets: Budgets, usage: BudgetUsage, scope: str) -> list[BudgetState]:
    """Every budget set, held against the usage of its current period: the day and month of `usage.day`, and the
    5-hour blocks active now (all machines' together: one window from the first one's start). Over means strictly
    more; a block that is not over yet but whose projection is gives a `will exceed` state. Pure."""
    states = []
    for kind, limit, period, costs in (
            ("daily_cost", budgets.daily_usd, usage.day.isoformat(), usage.day_cost),
            ("monthly_cost", budgets.monthly_usd, usage.day.strftime("%Y-%m"), usage.month_cost)):
        if limit is not None:
            value, machines = math.fsum(costs.values()), tuple(sorted(m for m, cost in costs.items() if cost))
            status = "exceeded" if value > limit else "ok"
            states.append(BudgetState(kind=kind, period=period, scope=scope, limit=limit, value=value,
                                      machines=machines, status=status))
    if budgets.block_tokens is None and not budgets.block_tokens_max:
        return states
    is_max = budgets.block_tokens_max
    cap = usage.largest_block if is_max else budgets.block_tokens or 0
    blocks = usage.blocks if cap else ()
    if not blocks:
        return [*states, BudgetState(kind="block_tokens", period="", scope=scope, limit=cap, value=0, machines=(),
                                     limit_is_max=is_max)]
    tokens = sum(block.tokens for block in blocks)
    projected = sum(block.tokens if block.projected is None else block.projected for block in blocks)
    machines = tuple(sorted({block.machine for block in blocks}))
    period = min(block.start for block in blocks).strftime("%Y-%m-%d %H:%M UTC")
    until = max(block.end for block in blocks).strftime("%Y-%m-%d %H:%M UTC")
    if tokens <= cap < projected:
        return [*states, BudgetState(kind="block_projection", period=period, scope=scope, limit=cap,
                                     value=projected, machines=machines, status="will exceed", limit_is_max=is_max,
                                     so_far=tokens, until=until)]
    return [*states, BudgetState(kind="block_tokens", period=period, scope=scope, limit=cap, value=tokens,
                                 machines=machines, status="exceeded" if tokens > cap else "ok", limit_is_max=is_max,
                                 until=until)]


@dataclass(frozen=True)
class Watched:
    """What holding the budgets against the store found: every state, and one line per breach with how (or that
    earlier) it was notified."""

    states: tuple[BudgetState, ...]
    breaches: tuple[str, ...]

    @property
    def exceeded(self) -> bool:
        return any(state.status == "exceeded" for state in self.states)

    def lines(self) -> list[str]:
        within = [state.text() for state in self.states if state.status == "ok"]
        return [*self.breaches, *(["Within budget: " + "; ".join(within)] if within else [])]


class BudgetStore:
    """The store's budget and alert rows, beside the alerts that use them (as AdminStore is beside the Admin API)."""

    def __init__(self, store: Store):
        self.store = store

    def budget_usage(self, day: dt.date, machine: str = "") -> BudgetUsage:
        """What budgets are held against, for one machine or ('') all: cost per machine on `day` and in its month,
        the 5-hour blocks active now (ccusage_v_active_blocks) and the largest finished block's tokens."""
        scope, query = {"machine": machine, "day": day, "month": day.replace(day=1)}, self.store.query
        _, days = query("SELECT machine_name, sum(total_cost) FROM ccusage_usage_daily FINAL WHERE date = "
                             "{day:Date} AND " + IN_SCOPE + " GROUP BY machine_name ORDER BY machine_name", scope)
        _, months = query("SELECT machine_name, sum(total_cost) FROM ccusage_usage_monthly FINAL WHERE month = "
                               "{month:Date} AND " + IN_SCOPE + " GROUP BY machine_name ORDER BY machine_name", scope)
        _, blocks = query("SELECT machine_name, start_time, end_time, total_tokens, projected_total_tokens "
                               "FROM ccusage_v_active_blocks WHERE " + IN_SCOPE + " ORDER BY start_time, machine_name",
                               scope)
        _, [(largest,)] = query("SELECT max(total_tokens) FROM ccusage_usage_blocks FINAL WHERE NOT (is_active "
                                     "= 1 AND end_time > now64(3)) AND " + IN_SCOPE, scope)
        return BudgetUsage(day, dict(days), dict(months), tuple(
            ActiveBlock(name, utc(start), utc(end), int(tokens), None if projected is None else int(projected))
            for name, start, end, tokens, projected in blocks), int(largest))

    def first_alert(self, key: Mapping[str, str]) -> AlertClaim | None:
        """The first recorded claim of a breach (its kind, period and scope): by the server's clock, then claim id."""
        _, rows = self.store.query(
            "SELECT claim_id, machine_name, created_at FROM ccusage_alerts WHERE kind = {kind:String} AND period = "
            "{period:String} AND scope = {scope:String} ORDER BY created_at, claim_id LIMIT 1", key)
        return AlertClaim(str(rows[0][0]), rows[0][1], utc(rows[0][2])) if rows else None

    def claim_alert(self, breach: BudgetState, settle: float) -> tuple[bool, AlertClaim | None]:
        """Whether this run notifies `breach`: none if a claim of it is recorded, else insert ours, wait `settle`
        seconds (a racing insert the server stamped earlier lands meanwhile) and read back; the first claim wins.
        Our claim not visible yet (a lagging replica) counts as won: a second notice rather than none."""
        if (first := self.first_alert(breach.key)) is not None:
            return False, first
        claim = str(uuid.uuid4())
        config = self.store.config
        self.store.client.command(
            "INSERT INTO ccusage_alerts (kind, period, scope, claim_id, machine_name, threshold, value, machines, "
            "message, created_at) SELECT {kind:String}, {period:String}, {scope:String}, {claim:UUID}, "
            "{machine:String}, {threshold:Float64}, {value:Float64}, {machines:Array(String)}, {message:String}, "
            "now64(3)", parameters={**breach.key, "claim": claim, "machine": config.machine_name,
                                    "threshold": breach.limit, "value": breach.value,
                                    "machines": list(breach.machines), "message": config.redact(breach.text())})
        time.sleep(settle)
        first = self.first_alert(breach.key)
        return first is None or first.claim_id == claim, first


def watch_budgets(store: Store, config: Config) -> Watched:
    """Hold every budget set against the store, and notify each breach that no run has notified before."""
    machine = config.machine_name if config.budgets.scope == "machine" else ""
    today = now().astimezone(zoneinfo.ZoneInfo(config.timezone)).date()
    budgets = BudgetStore(store)
    states = evaluate_budgets(config.budgets, budgets.budget_usage(today, machine),
                              f"machine:{machine}" if machine else "all")
    deadline = time.monotonic() + ALERT_DEADLINE
    lines = []
    for breach in (state for state in states if state.status != "ok"):
        won, first = budgets.claim_alert(breach, 0.0 if config.embedded else ALERT_CLAIM_SETTLE)
        how = notify(breach, config, deadline) if won or first is None else (
            f"notified {first.at:%Y-%m-%d %H:%M UTC} by {first.machine}")
        lines.append(config.redact(f"{breach.text()} — {how}"))
    return Watched(tuple(states), tuple(lines))


def notify(breach: BudgetState, config: Config, deadline: float) -> str:
    """Send a breach this run claimed to the webhook and the desktop, where set; the log has the caller's line."""
    sent, failed = ["log"], []
    if config.alert_webhook:
        problem = post_webhook(config.alert_webhook, f"{ALERT_TITLE}: {breach.text()}", deadline)
        sent += ["webhook"] if problem is None else []
        failed += [f"webhook not delivered: {problem}"] if problem else []
    if config.alert_desktop:
        problem = desktop_notify(breach.text(), config.desktop_env)
        sent += ["desktop"] if problem is None else []
        failed += [f"no desktop notification: {problem}"] if problem else []
    return "; ".join([f"notified now: {', '.join(sent)}", *failed])


def post_webhook(url: str, text: str, deadline: float, timeout: float = WEBHOOK_TIMEOUT) -> str | None:
    """POST {"text": text} as JSON (what Slack-style incoming webhooks take), retried once, never past `deadline`
    (time.monotonic()): an import waits for a dead webhook a few seconds at most. None when delivered, else why
    not, in words that never hold the URL."""
    import http.client  # here: with ssl and email they take 25 ms of every hourly run's start, for a rare alert
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps({"text": text}).encode(), method="POST", headers={
        "Content-Type": "application/json", "User-Agent": f"ccusage-import/{__version__}"})
    problem, attempts = "no time left", 0
    while attempts < 2 and (left := deadline - time.monotonic()) > 0:
        if attempts:
            time.sleep(min(WEBHOOK_RETRY_DELAY, left))
            left = deadline - time.monotonic()
        attempts += 1
        try:
            with urllib.request.urlopen(request, timeout=max(min(timeout, left), 0.1)):
                return None
        except urllib.error.HTTPError as exc:
            exc.close()
            problem = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            problem = "timed out" if isinstance(reason, TimeoutError) else first_line(
                str(reason) or type(reason).__name__)
    return f"{problem} ({attempts} attempt{'s' * (attempts != 1)})"


def desktop_notify(text: str, env: Mapping[str, str]) -> str | None:
    """Show `text` with notify-send (Linux) or osascript (macOS), whichever is on env's PATH; None when shown."""
    path = env.get("PATH", "")
    if tool := shutil.which("notify-send", path=path):
        argv = [tool, ALERT_TITLE, text]
    elif tool := shutil.which("osascript", path=path):
        argv = [tool, "-e", "on run argv", "-e", f'display notification (item 1 of argv) with title "{ALERT_TITLE}"',
                "-e", "end run", text]
    else:
        return "neither notify-send nor osascript is on PATH"
    try:
        done = subprocess.run(argv, env=dict(env), capture_output=True, timeout=DESKTOP_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return f"{Path(tool).name} did not finish within {DESKTOP_TIMEOUT:g} s"
    except OSError as exc:
        return f"{Path(tool).name}: {first_line(str(exc))}"
    return None if done.returncode == 0 else f"{Path(tool).name} exited with {done.returncode}"


# ----------------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------------


def reports_to_fetch(config: Config, scan: TranscriptScan, window: Window | None = None) -> list[Report]:
    """Claude Code's reports where it has a data folder (and, in an incremental run, a changed transcript); the
    agents' report where another agent has log files (ccusage 20 and later): an agent without data costs nothing."""
    changed = window is None or bool(window.files)
    claude = [r for r in REPORTS.values() if not r.for_agents] if config.claude_dirs and changed else []
    agents = [REPORTS["agents"]] if scan.agent_files and int(config.ccusage_version.split(".")[0]) >= 20 else []
    return claude + agents

class ClickHouseImporter:
    """Drives one import: fetch the reports in parallel, transform, plan against stored rows, write, summarise."""

    def __init__(self, config: Config, *, quiet: bool = False, force: bool = False, defer: bool = False):
        self.config = config
        self.quiet = quiet
        self.force = force
        self.defer = defer  # keep a window's reports in the journal rather than open the embedded engine
        self.progress = Progress(not quiet)

    def run(self) -> RunResult:
        config = self.config
        started, phases = now(), Phases()
        with phases.timed("scan"):
            scan = scan_transcripts(config.claude_dirs, config.agent_dirs)
            fingerprint = self._fingerprint(scan)

        def result(outcome: ImportOutcome, summary: Sequence[str] = (), budgets: Watched | None = None,
                   share: ShareSync | None = None) -> RunResult:
            return RunResult(run_id=uuid.uuid4(), machine_name=config.machine_name, started_at=started,
                             finished_at=now(), status=outcome.status, ccusage_version=config.ccusage_version,
                             transcript_files=scan.files, fingerprint=fingerprint, phases=phases,
                             runner=outcome.runner, plans=outcome.plans, errors=outcome.errors,
                             report_rows=outcome.report_rows, summary_lines=tuple(summary), read=outcome.read,
                             budgets=budgets, share=share)

        with run_lock(config.lock_path(), config.lock_timeout, "import"):
            state = LocalState(config.state_dir())
            previous = state.last_import(config.machine_name)
            unchanged = not self.force and (scan.files > 0 or bool(scan.agent_files))
            share_due = config.share is not None and ShareState(config.state_dir(), config.share).publish_due(now())
            # By hand with imports kept in the journal, the store opens to file them: its summary is then current.
            if (config.embedded and unchanged and previous.get("fingerprint") == fingerprint
                    and embedded_store_present(config) and not share_due
                    and (self.defer or not any(entry for _, entry in state.pending_runs()))):
                done = result(ImportOutcome("unchanged"), previous.get("summary", []))
                state.add_pending_run(done.run_row())
                return done
            may_defer = self._may_defer(state)
            with ThreadPoolExecutor(max_workers=1) as background:
                # Something changed: the engine opens (~0.4 s, much of it outside Python) while the window is worked
                # out and, with the embedded store, ccusage runs; then each report that comes back is parsed on the
                # same thread, in turn. With --defer the engine opens only if the run needs it.
                opening = None if may_defer else background.submit(self._open_to_import, phases)
                parser = self._parser(background, opening, scan) if opening is not None else None
                try:
                    late = late_lines(scan, previous, last_line_time)
                    scan = with_late_lines(scan, late)
                    gone = gone_transcripts(previous, scan)
                    block_starts = [_from_ns(ns) for ns in previous.get("block_starts", [])]
                    window, why = self._window(scan, previous, state.problem, block_starts, gone)
                    early = self._fetch(scan, phases, window, why, parser) if config.embedded else None
                    if may_defer and early and (deferred := self._defer(state, previous, scan, late, gone,
                                                                        block_starts, early, phases, result)):
                        return deferred
                except BaseException:
                    if opening is not None:
                        with contextlib.suppress(Exception):
                            opening.result()[0].close()
                    raise
                store, hasher = opening.result() if opening is not None else self._open_to_import(phases)
                try:
                    with phases.timed("connect"):
                        store.keep_timezone(config.timezone, settings_timezone(previous.get("settings")))
                        stored_fingerprint = store.last_successful_fingerprint()
                    restored, withheld = restore_from_share(store, config) if config.share else (0, "")
                    if unchanged and stored_fingerprint == fingerprint and not restored:
                        outcome = ImportOutcome("unchanged")
                    else:
                        if restored:  # what went is told by the restored sessions, as with no local state
                            window, early, gone, why = None, None, GoneTranscripts(known=False), (
                                f"this machine's history was restored from the share ({restored:,} rows)")
                        elif window is not None and (
                                why := store_disagrees(store, stored_fingerprint, previous.get("fingerprint"))):
                            window, early = None, None
                        fetched = early if early is not None else self._fetch(scan, phases, window, why, parser)
                        outcome = self._write(store, hasher, scan, fetched, phases, gone, block_starts)
                    store.record_runs([result(outcome).run_row()])
                    shared = None
                    if config.share:  # publish this machine's rows (the run's included), load the others'
                        with phases.timed("share"):
                            shared = sync_share(store, config, any(p.write or p.remove for p in outcome.plans),
                                                withheld)
                    with phases.timed("summary"):
                        lines = summary_lines(store.summary(), config.machine_name)
                    lines += deletion_warning(scan, claude_retention(config.claude_dirs)[0], now(), outcome.status)
                    budgets = None
                    if config.budgets.any:
                        with phases.timed("budgets"):
                            budgets = watch_budgets(store, config)
                    done = result(outcome, lines, budgets, shared)
                    # On the thread that parses, after every report it was given (a run whose store already held
                    # this import did not wait for them): the names it hashed are all there.
                    background.submit(state.remember_names, hasher.names).result()
                    if done.status == "ok":
                        state.remember(config.machine_name, fingerprint, list(lines), self._settings(),
                                       scan.transcripts, outcome.gone or gone, late,
                                       block_starts if outcome.block_starts is None else outcome.block_starts)
                    return done
                finally:
                    store.close()

    def _may_defer(self, state: LocalState) -> bool:
        """Whether this run may keep its reports in the journal (--defer): only the embedded store, without a share,
        budgets or a hash key of one's own (each needs the store, or its key, every run), and only while the
        journal's oldest run is younger than JOURNAL_FILED_AFTER."""
        config, since = self.config, state.pending_since()
        return (self.defer and not self.force and config.embedded and config.share is None and not config.budgets.any
                and not config.hash_key and embedded_store_present(config)
                and (since is None or dt.timedelta(0) <= now() - since < JOURNAL_FILED_AFTER))

    def _defer(self, state: LocalState, previous: Mapping[str, Any], scan: TranscriptScan,
               late: Mapping[str, list[int]], gone: GoneTranscripts, block_starts: Sequence[dt.datetime],
               fetched: Fetched, phases: Phases, result: Callable[..., RunResult]) -> RunResult | None:
        """Keep a window's reports in the journal, and the local state as the import will leave it, so the next run
        reads only what changes after this one; open_store files them. None: this run files its reports itself
        (everything was read, the state does not say what the store holds, a report failed or printed JSON of an
        unknown shape, a transcript was unreadable)."""
        config, window = self.config, fetched.window
        if (window is None or not previous.get("fingerprint") or not gone.known or not fetched.runner
                or fetched.errors or scan.unreadable):
            return None
        with phases.timed("journal"):
            context = ParseContext(NameHasher(b"", config.hash_projects), scan.session_files, config.wants)
            parsed, failed, skipped = parse_reports(fetched.documents, context, config.ccusage_version)
            if failed or skipped:
                return None
            exact = exact_of(window, gone, fetched.documents.get("blocks"), config.timezone)
            gone_next, starts = next_run_knows(window, gone, exact, incoming_records(parsed), block_starts)
            summary = previous.get("summary", [])
            done = result(ImportOutcome("deferred", fetched.runner, report_rows=report_sizes(fetched.documents),
                                        read=fetched.read), summary)
            state.add_pending_run(dataclasses.replace(done, status="ok").run_row(), journal_entry(
                previous["fingerprint"], config, fetched.documents, window, gone, block_starts,
                scan.session_files))
            state.remember(config.machine_name, done.fingerprint, summary, self._settings(), scan.transcripts,
                           gone_next, late, starts)
        return done

    def _open_to_import(self, phases: Phases) -> tuple[Store, NameHasher]:
        """open_store and the name hasher (its key is in the store), timed as the run's `connect`: run beside the
        window's work and ccusage (the engine's start is slow)."""
        with phases.timed("connect"):
            store = open_store(self.config)
            return store, NameHasher(store.hash_key(self.config.hash_key), self.config.hash_projects)

    def _parser(self, pool: ThreadPoolExecutor, opening: Future[tuple[Store, NameHasher]], scan: TranscriptScan
                ) -> Callable[[str, Any], Future[ParsedReport]]:
        """Parse each report as it comes back, while the others are still fetched: on the thread that opened the
        store, once it has (the hasher's key is there). A full read's last reports then wait for less."""
        def parse(name: str, doc: Any) -> Future[ParsedReport]:
            return pool.submit(lambda: REPORTS[name].parse(doc, ParseContext(opening.result()[1], scan.session_files,
                                                                             self.config.wants)))
        return parse

    def _window(self, scan: TranscriptScan, previous: Mapping[str, Any], problem: str,
                block_starts: Sequence[dt.datetime], gone: GoneTranscripts) -> tuple[Window | None, str]:
        """What Claude Code's reports read: None for everything (--force, a first import, other settings, a state
        file that cannot be trusted, a transcript that shrank or whose modification time went back), else the
        window of what changed since the last successful import (a transcript whose last line is later than its
        modification time counts as written then: late_lines). The second value says why everything is read."""
        seen = previous.get("transcripts")
        if self.force or previous.get("settings") != self._settings() or not isinstance(seen, dict):
            return None, problem
        went_back = [path for path, file in scan.transcripts.items() if path in seen and (
            file.size < seen[path][0] or file.mtime_ns < seen[path][1]
            or (file.size != seen[path][0] and file.mtime_ns == seen[path][1]))]
        if went_back:
            return None, (f"a transcript shrank or its modification time went back: {went_back[0]}"
                          + (f" and {len(went_back) - 1} more" if len(went_back) > 1 else ""))
        return read_window(scan, seen, self.config.timezone, first_line_time, block_starts,
                           gone.reach_back) or Window(), ""

    def _settings(self) -> str:
        config = self.config
        agents = ",".join(sorted(config.agents)) if config.agents is not None else "all"
        return f"{config.ccusage_version}/{config.timezone}/{config.hash_projects}/{agents}"

    def _fingerprint(self, scan: TranscriptScan) -> str:
        """Transcripts plus every setting that changes the rows: a new version or zone must re-import."""
        return hashlib.sha256(f"{scan.fingerprint}/{self._settings()}".encode()).hexdigest()

    def _fetch(self, scan: TranscriptScan, phases: Phases, window: Window | None = None, why: str = "",
               parse: Callable[[str, Any], Future[ParsedReport]] | None = None) -> Fetched:
        """Every report this machine's data needs, fetched in parallel (`why`: why everything is read, if it is;
        `parse`: starts parsing a report that came back)."""
        reports = reports_to_fetch(self.config, scan, window)
        if not reports:
            return Fetched(read=read_description(scan, window, why), window=window)
        with phases.timed("fetch"), read_scope(self.config, window) as (scope, window):
            runner = resolve_runner(self.config)
            documents, errors, parsed = self._fetch_all(runner, reports, scope,
                                                        len(reports) if window else FULL_READS_AT_ONCE, parse)
        return Fetched(runner.name, documents, tuple(errors), read_description(scan, window, why), window, parsed)

    def _write(self, store: Store, hasher: NameHasher, scan: TranscriptScan, fetched: Fetched,
               phases: Phases, gone: GoneTranscripts, block_starts: Sequence[dt.datetime]) -> ImportOutcome:
        """Transform what was fetched, plan it against the stored rows, write what is new or grew. `gone` and
        `block_starts` (of the full history's blocks stored so far) come back as the next run must know them."""
        window = fetched.window
        unreadable = (f"{len(scan.unreadable)} transcript{'s' * (len(scan.unreadable) != 1)} could not be read "
                      "(not this user's: written by `sudo claude`?): nothing of them was imported; give them back "
                      "to this user (sudo chown) and the next import reads them",) if scan.unreadable else ()
        if not fetched.runner and fetched.read:  # transcripts there, none changed: the other agents had no logs
            return ImportOutcome("partial" if unreadable else "ok", errors=unreadable, read=fetched.read, gone=gone)
        if not fetched.runner:
            return ImportOutcome("failed" if unreadable else "empty", errors=unreadable or (
                "no coding agent data found (Claude Code: ~/.claude/projects, ~/.config/claude/projects or "
                "CLAUDE_CONFIG_DIR; the other agents: see README): nothing to import",))
        documents = fetched.documents
        with phases.timed("write"):
            planned, failed_reports, agent_errors = plan_reports(self.config, store, hasher, documents,
                                                                 scan.session_files, window, gone, block_starts,
                                                                 fetched.parsed)
            plans, plan_errors = planned.plans, planned.errors
            store.write_records(plans, self.config.ccusage_version, now())
        errors = (*fetched.errors, *failed_reports, *agent_errors, *plan_errors, *unreadable)
        status = ("failed" if not documents or len(failed_reports) == len(documents) else
                  "partial" if errors else "ok")
        return ImportOutcome(status, fetched.runner, tuple(plans), errors,
                             report_sizes(documents), fetched.read,
                             planned.gone, planned.block_starts)

    def _fetch_all(self, runner: Runner, reports: Sequence[Report], scope: ReadScope, at_once: int,
                   parse: Callable[[str, Any], Future[ParsedReport]] | None
                   ) -> tuple[dict[str, Any], list[str], dict[str, Future[ParsedReport]]]:
        """Fetch the reports, `at_once` at a time; a failed report is named, the others go on. Each that comes back
        is handed to `parse` at once; documents and errors come back in the order of `reports`."""
        documents: dict[str, Any] = {}
        errors: dict[str, str] = {}
        parsed = {}
        with ThreadPoolExecutor(max_workers=min(len(reports), at_once)) as pool:
            futures = {pool.submit(fetch_report, runner, report, self.config, scope): report.name
                       for report in reports}
            self.progress.update(f"fetching {len(futures)} ccusage reports")
            for count, future in enumerate(as_completed(futures), 1):
                name = futures[future]
                self.progress.update(f"fetching {len(futures)} ccusage reports: {count} back ({name})")
                try:
                    documents[name] = future.result()
                except ReportError as exc:
                    errors[name] = str(exc)
                    continue
                if parse:
                    parsed[name] = parse(name, documents[name])
        self.progress.done()
        in_order = [report.name for report in reports]
        return ({name: documents[name] for name in in_order if name in documents},
                [errors[name] for name in in_order if name in errors], parsed)

@dataclass(frozen=True)
class Fetched:
    """The JSON of every report that came back, and why the others did not (no runner: nothing to fetch)."""

    runner: str = ""
    documents: Mapping[str, Any] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    read: str = ""  # which transcripts Claude Code's reports read, for the summary
    window: Window | None = None  # what an incremental run read (None: everything)
    parsed: Mapping[str, Future[ParsedReport]] = field(default_factory=dict)  # reports parsed as they came back


@dataclass(frozen=True)
class ImportOutcome:
    """What the import part of a run found and did (ClickHouseImporter.run adds times and the summary)."""

    status: str
    runner: str = ""
    plans: tuple[TablePlan, ...] = ()
    errors: tuple[str, ...] = ()
    report_rows: Mapping[str, int] = field(default_factory=dict)
    read: str = ""
    gone: GoneTranscripts | None = None  # what the next run must know of transcripts gone since
    block_starts: tuple[dt.datetime, ...] | None = None  # the full history's block starts stored so far


# ----------------------------------------------------------------------------------------------------------------
# Preflight: --check
# ----------------------------------------------------------------------------------------------------------------

CHECK_MARKS = {"ok": "✅", "warn": "⚠️", "fail": "❌"}
SCHEMA_FIX = "run an import once (`uv run ccusage_importer.py`), it creates the schema"


@dataclass(frozen=True)
class CheckResult:
    """One line of --check: ok, warn (works, but look) or fail, with the fix for anything not ok."""

    status: str
    label: str
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class StoreCheck:
    """A check of the open store; an exception it raises becomes its failure, with `fix`."""

    label: str
    run: Callable[[Store], CheckResult]
    fix: str


def run_check(env: Mapping[str, str], args: argparse.Namespace, extra_store_checks: Sequence[StoreCheck] = ()) -> int:
    """Check everything an import needs without importing; print each result as it comes; 1 if any failed."""
    try:
        config = Config.from_env(env, args)
    except UserError as exc:
        hidden = secret_texts(env)
        return print_checks([CheckResult("fail", "configuration", str(exc), "correct that variable")],
                            lambda text: redact(text, hidden))
    return print_checks(preflight(config, extra_store_checks), config.redact)


def print_checks(results: Iterable[CheckResult], hide: Callable[[str], str]) -> int:
    """The only place --check prints; every line passes through `hide`, so no secret can reach the screen."""
    counts = dict.fromkeys(CHECK_MARKS, 0)
    print(f"ccusage-import {__version__} --check")
    for result in results:
        counts[result.status] += 1
        print(hide(f"{CHECK_MARKS[result.status]} {result.label}: {result.detail}"), flush=True)
        if result.status != "ok" and result.fix:
            print(hide(f"   fix: {result.fix}"), flush=True)
    print(f"{counts['ok']} passed, {counts['warn']} warning{'s' * (counts['warn'] != 1)}, {counts['fail']} failed")
    return EXIT_FAILED if counts["fail"] else EXIT_OK


def preflight(config: Config, extra_store_checks: Sequence[StoreCheck] = ()) -> Iterator[CheckResult]:
    """Every check in order; a check whose prerequisite failed is left out (the failure above says why).
    claude_admin_importer.py's --check adds its own store checks."""
    yield check_configuration(config)
    yield CheckResult("ok", "machine name", f"{config.machine_name} (from {config.machine_name_source})")
    scan = scan_transcripts(config.claude_dirs, config.agent_dirs)
    yield check_claude_data(config, scan)
    if config.claude_dirs:
        yield check_retention(config, scan)
    yield check_agent_data(config, scan)
    runner_result, runner = check_runner(config)
    yield runner_result
    if runner and (reports := reports_to_fetch(config, scan)):
        yield from check_reports(runner, config, reports)
    yield from check_store(config, (*STORE_CHECKS, *([SHARE_CHECK] if config.share else []), *extra_store_checks))


def check_configuration(config: Config) -> CheckResult:
    secret = "set (not shown)" if config.ch_password else "not set"
    hashing = "hashed" if config.hash_projects else "stored as they are (--no-hash-projects)"
    return CheckResult("ok", "configuration", (
        f"store {config.store_description()}, password {secret}; ccusage {config.ccusage_version}, time zone "
        f"{config.timezone}, timeout {config.command_timeout:g} s, {config.command_retries} retries; "
        f"project names {hashing}"))


def check_claude_data(config: Config, scan: TranscriptScan) -> CheckResult:
    label = "Claude Code data"
    if not config.wants(CLAUDE):
        return CheckResult("ok", label, f"not imported (CCUSAGE_AGENTS={','.join(sorted(config.agents or ()))})")
    if not config.claude_dirs:
        detail = f"no projects/ folder in {config.claude_dirs_setting}"
        fix = ("use Claude Code on this machine once, or set CLAUDE_CONFIG_DIR to the folder that holds projects/ "
               "(several: comma-separated)")
        return CheckResult("warn", label, f"{detail}: only the other agents are imported", fix) if scan.agent_files \
            else CheckResult("fail", label, detail, fix)
    detail = f"{scan.files} transcript file{'s' * (scan.files != 1)} in {', '.join(str(d) for d in config.claude_dirs)}"
    if not scan.files:
        return CheckResult("warn", label, detail, "nothing to import yet: use Claude Code, then import")
    return CheckResult("ok", label, detail)


def check_runner(config: Config) -> tuple[CheckResult, Runner | None]:
    """The runner the import would use, and that it really is the pinned ccusage."""
    version = config.ccusage_version
    install = f"install Node.js (for npx) or Bun, or put ccusage on PATH: `npm install -g ccusage@{version}`"
    try:
        runner = resolve_runner(config)
    except UserError:
        return CheckResult("fail", "ccusage", f"no ccusage {version} on PATH, and neither bunx nor npx", install), None
    shown = f"{runner.name} ({' '.join(runner.argv)})"
    found = cli_version(runner.argv, config)
    if found != version:
        return CheckResult("fail", "ccusage", f"{shown} --version printed {found or 'no version'}, not {version}",
                           install), None
    return CheckResult("ok", "ccusage", f"ccusage {version} runs via {shown}"), runner


def check_retention(config: Config, scan: TranscriptScan) -> CheckResult:
    """When Claude Code deletes what it has not been imported yet: its setting, the oldest transcript, and cron."""
    days, source = claude_retention(config.claude_dirs)
    detail = f"Claude Code keeps transcripts {days} days (cleanupPeriodDays, {source})"
    if scan.transcript_mtimes:
        oldest = dt.datetime.fromtimestamp(scan.transcript_mtimes[0], dt.UTC)
        detail += f"; the oldest is from {oldest:%Y-%m-%d} and goes around {oldest + dt.timedelta(days=days):%Y-%m-%d}"
    problems, fixes = [], []
    if days < 7:
        problems.append(f"{days} days leave little time to import")
        fixes.append(f"raise cleanupPeriodDays in {source if source.endswith('.json') else 'settings.json'} "
                     "(Claude Code's default is 30)")
    cron_problems_found, cron_fixes = cron_problems(config.child_env.get("PATH"), now())
    problems += cron_problems_found
    fixes += cron_fixes
    if problems:
        return CheckResult("warn", "history retention", f"{detail}; {'; '.join(problems)}", "; ".join(fixes))
    return CheckResult("ok", "history retention", f"{detail}; the hourly import is in the crontab, and cron runs it")


def check_last_import(store: Store) -> CheckResult:
    """Whether this machine's last successful import is recent enough that Claude Code has deleted nothing unseen."""
    config = store.config
    days, _ = claude_retention(config.claude_dirs)
    last = store.last_import()
    if last is None:
        return CheckResult("warn", "last import", f"machine {config.machine_name} was never imported into this store",
                           "run `uv run ccusage_importer.py`")
    age = now() - last
    detail = f"machine {config.machine_name}, {last:%Y-%m-%d %H:%M} UTC ({human_age(age)} ago)"
    kept = sum(entry is not None for _, entry in LocalState(config.state_dir()).pending_runs()) if (
        config.embedded) else 0
    if kept:
        detail += f"; {kept} later import{'s' * (kept != 1)} kept in the journal (--defer), filed at the next opening"
    if config.claude_dirs and age > dt.timedelta(days=max(days - 2, 0)):
        return CheckResult("warn", "last import", f"{detail}: Claude Code deletes transcripts after {days} days",
                           "import now (`uv run ccusage_importer.py`) and install the hourly job (./setup_cronjob.sh)")
    return CheckResult("ok", "last import", detail)


def check_agent_data(config: Config, scan: TranscriptScan) -> CheckResult:
    """The other coding agents whose logs an import would read, and where (CCUSAGE_AGENTS limits them)."""
    limit = f" (CCUSAGE_AGENTS={','.join(sorted(config.agents))})" if config.agents is not None else ""
    found = [f"{agent} ({scan.agent_files[agent]} file{'s' * (scan.agent_files[agent] != 1)} in "
             f"{', '.join(str(folder) for folder in config.agent_dirs[agent])})"
             for agent in sorted(scan.agent_files)]
    if not found:
        return CheckResult("ok", "other agents", f"no logs of another coding agent found{limit}")
    return CheckResult("ok", "other agents", "; ".join(found) + limit)


def check_reports(runner: Runner, config: Config, reports: Sequence[Report]) -> list[CheckResult]:
    """Every report the import fetches on a full read, as many at once, each tried once within its timeout."""
    once = dataclasses.replace(config, command_retries=0)
    with ThreadPoolExecutor(max_workers=min(len(reports), FULL_READS_AT_ONCE)) as pool:
        futures = [pool.submit(check_report, runner, report, once) for report in reports]
        return [future.result() for future in futures]


def check_report(runner: Runner, report: Report, config: Config) -> CheckResult:
    label = f"ccusage {report.command}"
    clock = time.monotonic()
    try:
        doc = fetch_report(runner, report, config)
        rows, skipped = report.parse(doc, ParseContext(NameHasher(secrets.token_bytes(32), hash_names=True),
                                                       wants=config.wants))  # only counts matter
    except ReportError as exc:
        fix = (f"raise CCUSAGE_TIMEOUT (now {config.command_timeout:g} s)" if "timed out" in str(exc)
               else "run that command by hand to see ccusage's own message")
        return CheckResult("fail", label, str(exc), fix)
    except ShapeError as exc:
        return CheckResult("fail", label, f"printed JSON of an unknown shape: {exc}",
                           f"pin a ccusage release this importer knows: CCUSAGE_VERSION={DEFAULT_CCUSAGE_VERSION}")
    seconds = time.monotonic() - clock
    size = report.size(doc)
    detail = f"{size} {report.unit}"
    if report is REPORTS["projects_daily"]:
        detail += f" over {len(daily_records(rows))} days"
    elif report.tables in ((BLOCKS,), (HOURS,)) and len(rows) != size:
        detail += f" ({len(rows)} with usage, {size - len(rows)} idle gaps)"
    elif report.for_agents:
        agents = sorted({r.row["agent"] for r in rows})
        detail += f" of {', '.join(agents) or 'no agent'}"
    detail += f", valid JSON, in {seconds:.1f} s"
    if skipped:
        return CheckResult("warn", label, f"{detail}; skipped: {'; '.join(skipped)}",
                           "update ccusage-import: this ccusage prints an agent it does not know the shape of")
    if config.command_timeout and seconds > config.command_timeout / 2:
        return CheckResult("warn", label, f"{detail}, more than half of the {config.command_timeout:g} s timeout",
                           "raise CCUSAGE_TIMEOUT so a busier day does not time out")
    return CheckResult("ok", label, detail)


def check_store(config: Config, checks: Sequence[StoreCheck]) -> Iterator[CheckResult]:
    """Store checks; the embedded store is opened under the importer's lock, like every other command. A check
    creates nothing: an embedded store that does not exist yet is reported, not made."""
    if config.embedded and not config.embedded_path.exists():
        yield CheckResult("warn", "store", f"no store yet at {config.embedded_path}: the first import creates it",
                          "run `uv run ccusage_importer.py` once")
        return
    try:
        lock = run_lock(config.lock_path(), config.lock_timeout, "check") if config.embedded else _no_lock()
        with lock:
            yield from _store_checks(config, checks)
    except UserError as exc:
        yield CheckResult("fail", "store", str(exc), "wait for the running import to finish, then check again")


def _store_checks(config: Config, checks: Sequence[StoreCheck]) -> Iterator[CheckResult]:
    clock = time.monotonic()
    try:
        store = Store.connect(config)
    except UserError as exc:
        yield CheckResult("fail", "store connection", str(exc), _connection_fix(config, str(exc)))
        return
    try:
        yield CheckResult("ok", "store connection",
                          f"{config.store_description()} in {(time.monotonic() - clock) * 1000:.0f} ms")
        for check in checks:
            try:
                yield check.run(store)
            except Exception as exc:  # a database error is this check's failure, not a crash of --check
                yield CheckResult("fail", check.label, f"{type(exc).__name__}: {first_line(str(exc))}", check.fix)
    finally:
        store.close()


def _connection_fix(config: Config, message: str) -> str:
    if config.embedded:
        if "another program" in message:
            return "close the program that has the store open, then check again"
        return f"make {config.embedded_path.parent} writable, or point CCUSAGE_IMPORT_DB at a writable folder"
    if "Unknown identifier: readonly" in message:  # what clickhouse-connect's first query gets from old servers
        return "this ClickHouse server is too old for the importer's driver (clickhouse-connect): upgrade it"
    return ("correct what the reason names: CH_HOST, CH_PORT (the HTTP port, usually 8123; 8443 or CH_PROTOCOL=https "
            "for HTTPS), CH_USER, CH_PASSWORD or CH_DATABASE")


class StoreProbes:
    """What --check asks the store beyond the import's own questions."""

    def __init__(self, store: Store):
        self.store = store

    def server_version(self) -> str:
        return str(self.store.query("SELECT version()")[1][0][0])

    def database_objects(self) -> tuple[str, int]:
        """The database queries run in, and how many tables and views it holds."""
        _, [(database, objects)] = self.store.query(
            "SELECT currentDatabase(), count() FROM system.tables WHERE database = currentDatabase()")
        return database, int(objects)

    def scratch_write(self) -> tuple[str, int]:
        """Create, fill, read and drop a scratch table whose name we generate (no user data in the SQL)."""
        name = f"_ccusage_check_{uuid.uuid4().hex[:12]}"
        self.store.client.command(f"CREATE TABLE {name} (x UInt8) ENGINE = MergeTree ORDER BY x")
        try:
            self.store.client.insert(name, [[1]], column_names=["x"], column_type_names=["UInt8"])
            _, [(count,)] = self.store.query(f"SELECT count() FROM {name}")
        finally:
            self.store.client.command(f"DROP TABLE IF EXISTS {name}")
        return name, int(count)

    def round_trip_ms(self) -> float:
        clock = time.monotonic()
        self.store.query("SELECT 1")
        return (time.monotonic() - clock) * 1000


def check_server_version(store: Store) -> CheckResult:
    engine = "chDB (embedded ClickHouse)" if store.config.embedded else "ClickHouse server"
    return CheckResult("ok", "server version", f"{engine} {StoreProbes(store).server_version()}")


def check_database(store: Store) -> CheckResult:
    database, objects = StoreProbes(store).database_objects()
    if database != store.config.ch_database:
        return CheckResult("fail", "database", f"queries run in {database}, not {store.config.ch_database}",
                           "check CH_DATABASE and the user's default database")
    return CheckResult("ok", "database", f"{database} readable, {objects} tables and views")


def schema_problems(expected: Mapping[str, SchemaObject],
                    actual: Mapping[str, Iterable[str]]) -> tuple[list[str], dict[str, list[str]]]:
    """Tables/views that are missing, and those that lack columns (extra columns, e.g. from migrations, are fine)."""
    missing = [name for name in expected if name not in actual]
    lacking = {name: [c for c in item.columns if c not in set(actual[name])] for name, item in expected.items()
               if name in actual}
    return missing, {name: columns for name, columns in lacking.items() if columns}


def check_schema(store: Store) -> CheckResult:
    """Every table and view of the schema file, compared by column name with what the database lists."""
    expected = SCHEMA
    missing, lacking = schema_problems(expected, store.columns_of(list(expected)))
    tables = [name for name, item in expected.items() if item.kind == "table"]
    if len(missing) == len(expected):
        return CheckResult("warn", "tables and views", f"none of the {len(expected)} exist yet (a new database)",
                           SCHEMA_FIX)
    if not missing and not lacking:
        columns = sum(len(item.columns) for item in expected.values())
        return CheckResult("ok", "tables and views", f"all {len(tables)} tables and {len(expected) - len(tables)} "
                                                     f"views have their {columns} columns")
    problems = [f"missing {name}" for name in missing] + [
        f"{name} lacks {', '.join(columns)}" for name, columns in lacking.items()]
    fixes = [SCHEMA_FIX] if missing or any(name not in tables for name in lacking) else []
    if any(name in tables for name in lacking):
        fixes.append(f"add the columns as {SCHEMA_FILE.name} declares them (ALTER TABLE … ADD COLUMN)")
    return CheckResult("fail", "tables and views", "; ".join(problems), "; ".join(fixes))


def check_write(store: Store) -> CheckResult:
    name, count = StoreProbes(store).scratch_write()
    if count != 1:
        return CheckResult("fail", "write permission", f"scratch table {name} read back {count} rows, not 1",
                           "check the server's logs: an insert was lost")
    return CheckResult("ok", "write permission", "created, filled, read and dropped a scratch table")


def response_rating(milliseconds: float) -> tuple[str, str]:
    """The seed's scale: under 100 ms excellent, under 500 ms good, else slow (a warning, imports still work)."""
    if milliseconds < 100:
        return "ok", "excellent"
    return ("ok", "good") if milliseconds < 500 else ("warn", "slow")


def check_response_time(store: Store) -> CheckResult:
    median = sorted(StoreProbes(store).round_trip_ms() for _ in range(3))[1]
    status, rating = response_rating(median)
    return CheckResult(status, "response time", f"{median:.0f} ms for SELECT 1 (median of 3): {rating}",
                       "the server or the network is slow: imports still work, they take longer")


def check_share(store: Store) -> CheckResult:
    """CCUSAGE_SHARE: reachable, writable, of the same key and zone; every machine in it and its last publish."""
    config = store.config
    assert config.share is not None and config.hash_key
    share, fingerprint = Share(store, config.share), key_fingerprint(config.hash_key)
    try:
        manifests = share.manifests()
        if refused := share.identity(fingerprint, config.timezone, create=False):
            return CheckResult("fail", "share", f"{config.share}: {refused}", "use the share's CCUSAGE_HASH_KEY and "
                               "CCUSAGE_TIMEZONE on this machine, or another share")
        share.probe(config.machine_name)
    except ShareError as exc:
        return CheckResult("fail", "share", f"{config.share}: {exc}", SHARE_CHECK.fix)
    listed, skipped, stale = [], [], False
    for folder, manifest in manifests.items():
        if isinstance(manifest, str) or share_mismatch(manifest, fingerprint, config.timezone):
            skipped.append(folder)
            continue
        own = manifest["machine"] == config.machine_name
        old = not own and now() - manifest["published_at"] > SHARE_STALE
        stale |= old
        how = "this machine, published" if own else "stale: last published" if old else "published"
        listed.append(f"{manifest['machine']} ({how} {manifest['published_at']:%Y-%m-%d %H:%M} UTC)")
    detail = (f"{config.share}: reachable, writable, same key and time zone; machines: "
              f"{', '.join(listed) or 'none has published yet'}" + (f"; skipped: {', '.join(skipped)}" * bool(skipped)))
    if stale or skipped:
        return CheckResult("warn", "share", detail, "a stale machine has not imported (or reached the share) for "
                           f"{SHARE_STALE.days} days; a skipped folder is not of this share: remove it")
    return CheckResult("ok", "share", detail)


SHARE_CHECK = StoreCheck("share", check_share, "mount or sync the folder (or create the bucket), let this user write "
                         "in it; for S3 check CCUSAGE_S3_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
STORE_CHECKS = (
    StoreCheck("server version", check_server_version, "check that the server is a ClickHouse release"),
    StoreCheck("database", check_database, "grant the user SELECT on the database and on system.tables"),
    StoreCheck("tables and views", check_schema, SCHEMA_FIX),
    StoreCheck("write permission", check_write, "grant the user CREATE TABLE, INSERT and DROP TABLE on the database"),
    StoreCheck("response time", check_response_time, "check the server's load and the network"),
    StoreCheck("last import", check_last_import, "run `uv run ccusage_importer.py`"),
)


# ----------------------------------------------------------------------------------------------------------------
# Dashboard: one self-contained HTML file drawn from the named queries
# ----------------------------------------------------------------------------------------------------------------

DASHBOARD_DIR = HERE / "dashboard"
DEFAULT_DASHBOARD_FILE = "ccusage-dashboard.html"
# Chart.js and its matrix (heat map) plugin, vendored from the npm registry (dashboard/vendor/README.md).
DASHBOARD_LIBRARIES = ("chart.umd.min.js", "chartjs-chart-matrix.min.js")
# The page's own values for parameters the queries declare: the whole history and every row (`tz` is the import's
# time zone, `machine` and `agent` the set being gathered; any other parameter keeps its default).
DASHBOARD_CHOICES = {"days": "36600", "limit": "4294967295", "stale_hours": "2"}
# (dataset, named query). Per-machine datasets run for every choice of the page's machine and agent filters: all
# machines and each machine, each with all agents and with each of its agents (a machine with one agent needs no
# second set: its agent's numbers are all of its numbers). The page's date filter works on their `date` column.
PER_MACHINE_DATASETS = (
    ("summary", "dashboard_summary"),
    ("models", "model_cost_daily"),
    ("projects", "project_timeline"),
    ("tokens", "daily_tokens_90d"),
    ("cache", "cache_efficiency_daily"),
    ("hours", "hour_cost_daily"),
)
# Run for each machine choice with all agents only: these rows split by agent themselves.
AGENT_SPLIT_DATASETS = (
    ("agent_days", "agent_cost_daily"),
)
SHARED_DATASETS = (  # rows that name their machine (and agent), or are about every machine's Claude Code
    ("agents", "agent_summary"),
    ("active_blocks", "active_block"),
    ("freshness", "machine_freshness"),
    ("estimates", "admin_estimated_vs_billed"),
)


def dashboard_parameters(query: NamedQuery, machine: str, timezone: str, agent: str = "") -> dict[str, Any]:
    """Parameters as --query would take them: the page's choices where the query declares them, else defaults."""
    choices = {**DASHBOARD_CHOICES, "tz": timezone, "machine": machine, "agent": agent}
    return query_parameters(query, [f"{p.name}={choices[p.name]}" for p in query.params if p.name in choices])


def json_cell(value: Any) -> Any:
    """A query result cell as JSON: ISO dates, UTC times, lists, decimals (the Admin API's exact dollars) as
    numbers; NaN and infinity as null."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return utc(value).astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [json_cell(v) for v in value]
    return value


def dashboard_data(store: Store, queries: Sequence[NamedQuery], timezone: str,
                   published: Mapping[str, dt.datetime] | None = None) -> dict[str, Any]:
    """Every dataset the page draws, each the result of a named query ({columns, rows}). `published`: the other
    machines of a share and their last publish, which then says whether they are stale (SHARE_STALE)."""

    def run(name: str, machine: str = "", agent: str = "") -> dict[str, Any]:
        query = find_query(queries, name)
        columns, rows = store.query(query.sql, dashboard_parameters(query, machine, timezone, agent))
        return {"columns": columns, "rows": [[json_cell(v) for v in row] for row in rows]}

    def scope(machine: str, agent: str = "") -> dict[str, Any]:
        datasets = PER_MACHINE_DATASETS if agent else (*PER_MACHINE_DATASETS, *AGENT_SPLIT_DATASETS)
        return {"machine": machine, "agent": agent,
                "data": {key: run(name, machine, agent) for key, name in datasets}}

    shared = {key: run(name) for key, name in SHARED_DATASETS}
    everything = scope("")
    summary = everything["data"]["summary"]
    empty = not dict(zip(summary["columns"], summary["rows"][0], strict=True))["all_time_tokens"]
    freshness = shared["freshness"]
    machines = sorted(row[freshness["columns"].index("machine_name")] for row in freshness["rows"])
    if published:
        name, stale = freshness["columns"].index("machine_name"), freshness["columns"].index("is_stale")
        freshness["columns"].append("last_publish")
        for row in freshness["rows"]:
            if (when := published.get(row[name])) is not None:
                row[stale] = int(now() - when > SHARE_STALE)
            row.append(json_cell(when))
    agent_rows = [dict(zip(shared["agents"]["columns"], row, strict=True)) for row in shared["agents"]["rows"]]
    agents_of = {machine: sorted({r["agent"] for r in agent_rows if machine in ("", r["machine_name"])})
                 for machine in ["", *machines]}
    scopes = [everything] + ([] if empty else [scope(machine) for machine in machines])
    scopes += [scope(machine, agent) for machine, agents in agents_of.items() if len(agents) > 1 for agent in agents]
    today = store.today()
    return {
        "meta": {"generated_at": json_cell(now().replace(microsecond=0)), "today": json_cell(today),
                 "timezone": timezone, "version": __version__, "stale_hours": int(DASHBOARD_CHOICES["stale_hours"]),
                 "share_stale_days": SHARE_STALE.days,
                 "queries": [name for _, name in (*PER_MACHINE_DATASETS, *AGENT_SPLIT_DATASETS, *SHARED_DATASETS)]},
        "empty": empty,
        "machines": machines,
        "agents": agents_of[""],
        "shared": shared,
        "scopes": scopes,
    }


def library_label(code: str) -> str:
    """'Chart.js 4.6.1' from the banner comment the vendored builds start with (` * Chart.js v4.6.1`)."""
    match = re.search(r"^\s*\*\s*(\S+) v(\d+\.\d+\.\d+)\s*$", code[:400], re.M)
    return f"{match.group(1)} {match.group(2)}" if match else "unknown version"


def render_dashboard(data: Mapping[str, Any], template: str, libraries: Mapping[str, str]) -> str:
    """The template with the libraries and the data put in; the page itself is all in the template.

    In the JSON every `<` is written as \\u003c, so no project or machine name can close the script element or
    open a comment in it, whatever it contains.
    """
    scripts = []
    for name, code in libraries.items():
        code = re.sub(r"^//# sourceMappingURL=.*$", "", code, flags=re.M)  # no request for a source map
        if re.search(r"</script|<!--", code, re.I):
            raise UserError(f"{name} cannot be put inside a <script> element: it contains </script or <!--")
        scripts.append(f"<script>{code}</script>")
    payload = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")
    parts = {"LIBRARY": "\n".join(scripts), "DATA": payload}
    return re.sub(r"@@(LIBRARY|DATA)@@", lambda match: parts[match.group(1)], template)


def _dashboard_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None


def write_dashboard(config: Config, target: str, quiet: bool, names: Mapping[str, str] | None = None) -> int:
    """--dashboard [FILE]: the dashboard of the configured store as one HTML file that opens offline, with the names
    this machine knows in place of their hashes (the file stays on this machine)."""
    if not target.strip():
        raise UserError("--dashboard FILE: the file name is empty", EXIT_USAGE)
    path = Path(target)
    queries = load_queries()
    template = _dashboard_file(DASHBOARD_DIR / "template.html")
    libraries = {name: _dashboard_file(DASHBOARD_DIR / "vendor" / name) for name in DASHBOARD_LIBRARIES}
    published: dict[str, dt.datetime] = {}
    with _reading_store(config, published) as store:
        published.pop(config.machine_name, None)  # this machine's freshness is its own imports
        data = readable(dashboard_data(store, queries, config.timezone, published), names or {})
    data["meta"]["libraries"] = [library_label(code) for code in libraries.values()]
    html = render_dashboard(data, template, libraries).encode("utf-8")
    try:
        write_private(path, html)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from None
    if not quiet:
        if data["empty"]:
            print(f"Dashboard written to {path}: the store holds no usage yet, so the page only says how to import "
                  "(`uv run ccusage_importer.py`).")
        else:
            print(f"Dashboard written to {path} ({len(html) / 1024:.0f} KB, {len(data['machines'])} machine"
                  f"{'s' * (len(data['machines']) != 1)}): open it in a browser; it needs no network.")
    return EXIT_OK


# ----------------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------------


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one `error:` line and exit 2, like every other expected failure."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        sys.exit(EXIT_USAGE)


class EpilogAsWritten(argparse.HelpFormatter):
    """argparse's help, but the epilog (help_epilog's, already wrapped) keeps its lines."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return text if "\n" in text else super()._fill_text(text, width, indent)


def help_epilog(variables: Sequence[tuple[str, str]], exits: Sequence[tuple[int, str]], docs: str) -> str:
    """The end of a script's --help: its main environment variables, its exit codes and where the full docs are,
    wrapped as argparse wraps the rest (the terminal's width less 2)."""
    width = max(shutil.get_terminal_size().columns - 2, 40)

    def items(pairs: Sequence[tuple[str, str]]) -> list[str]:
        indent = max(len(name) for name, _ in pairs) + 4
        return [line for name, meaning in pairs for line in textwrap.wrap(
            meaning, width, initial_indent=f"  {name}".ljust(indent), subsequent_indent=" " * indent)]

    return "\n".join(["main environment variables:", *items(variables), "", "exit codes:",
                      *items([(str(code), meaning) for code, meaning in exits]), "",
                      *textwrap.wrap(f"full documentation: {docs}", width, break_on_hyphens=False)])


IMPORTER_EXITS = ((EXIT_OK, "success, also nothing changed or no agent data; --check: no check failed"),
                  (EXIT_FAILED, "failure or a partial import; --check: a check failed"),
                  (EXIT_USAGE, "bad usage (an option, a parameter or a setting)"),
                  (EXIT_LOCKED, "another run held the store for longer than the lock timeout"),
                  (EXIT_BUDGET, "--alerts: a budget is exceeded"),
                  (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"))


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options both scripts take alike (claude_admin_importer.py reuses this)."""
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument("--lock-timeout", metavar="SECONDS",
                        help="how long to wait for a run holding the store (default: CCUSAGE_LOCK_TIMEOUT or 120)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="ccusage_importer.py",
        description="Import ccusage reports of Claude Code and other coding agents into ClickHouse (embedded chDB by "
                    "default).",
        formatter_class=EpilogAsWritten,
        epilog=help_epilog((
            ("CH_HOST", "a ClickHouse server (with CH_PORT, CH_USER, CH_PASSWORD, CH_DATABASE); unset: embedded"),
            ("CCUSAGE_IMPORT_DB", "folder of the embedded store (default ~/.local/share/ccusage-import/chdb)"),
            ("MACHINE_NAME", "name stored with every row (default: the host name)"),
            ("CCUSAGE_AGENTS", "agents to import, e.g. claude,codex (default: all)"),
            ("CCUSAGE_TIMEZONE", "IANA zone of days and months (default UTC)"),
            ("CCUSAGE_VERSION", f"the pinned ccusage release (default {DEFAULT_CCUSAGE_VERSION})"),
            ("CCUSAGE_HASH_KEY", "your own key for project and session hashes (default: kept in the store)"),
            ("CCUSAGE_BUDGET_*", "CCUSAGE_BUDGET_DAILY_USD, _MONTHLY_USD: budgets for --alerts and imports"),
        ), IMPORTER_EXITS, f"{HERE / 'README.md'} (every setting) and {HERE / 'docs'}/"),
    )
    parser.add_argument("--machine-name", help="name stored with every row (default: MACHINE_NAME or host name)")
    parser.add_argument("--no-hash-projects", action="store_true",
                        help="store real project paths and session ids instead of keyed hashes")
    parser.add_argument("--force", action="store_true",
                        help="run ccusage even if no transcript changed since the last import")
    parser.add_argument("--defer", action="store_true",
                        help="what cron runs: keep an hourly window's reports in a journal instead of opening the "
                             "embedded store, which files them when next opened (at the latest after "
                             f"{JOURNAL_FILED_AFTER.total_seconds() / 3600:g} hours)")
    add_run_options(parser)
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--check", action="store_true",
                       help="check ccusage, the Claude data and the store without importing; exit 1 if a check fails")
    modes.add_argument("--sql", metavar="QUERY", help="run one SQL query against the configured store and print it")
    modes.add_argument("--query", metavar="NAME",
                       help="run a named query of queries.sql against the configured store; `--query list` lists them")
    modes.add_argument("--dashboard", nargs="?", const=DEFAULT_DASHBOARD_FILE, metavar="FILE",
                       help="write a self-contained HTML dashboard of the store that opens offline "
                            f"(default FILE: {DEFAULT_DASHBOARD_FILE})")
    modes.add_argument("--alerts", action="store_true",
                       help="hold the budgets (CCUSAGE_BUDGET_*, CCUSAGE_BLOCK_TOKEN_LIMIT) against the store, notify "
                            f"new breaches; one line per breach, exit {EXIT_BUDGET} if a budget is exceeded")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="a parameter of --query (repeatable); parameters not given take their defaults")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table",
                        help="output format of --sql and --query: aligned table, CSV, or JSON lines (default: table)")
    parser.add_argument("--verbose", action="store_true", help="with `--query list`: show each query's parameters")
    parser.add_argument("--no-names", action="store_true",
                        help="--sql, --query and --dashboard show project and session hashes, not the names this "
                             "machine knows")
    parser.add_argument("--version", action="version", version=f"ccusage-import {__version__}")
    return parser


def check_modes(args: argparse.Namespace) -> None:
    """Usage errors argparse cannot see: an empty mode value is never an import, --param needs a query name."""
    for flag, value, what in (("--sql", args.sql, "the query"), ("--query", args.query, "the query name"),
                              ("--dashboard", args.dashboard, "the file name")):
        if value is not None and not value.strip():
            raise UserError(f"{flag}: {what} is empty", EXIT_USAGE)
    if args.sql is not None and (count := statement_count(args.sql)) > 1:
        raise UserError(f"--sql runs one statement; this text holds {count}, separated by `;`: run them one at a "
                        "time", EXIT_USAGE)
    if args.param and args.query is None:
        raise UserError("--param goes with --query NAME", EXIT_USAGE)
    if args.verbose and args.query != "list":
        raise UserError("--verbose goes with --query list", EXIT_USAGE)


def terminal_width() -> int | None:
    """The terminal's width when output goes to one (tables then fit it), else None: full values for files and
    pipes."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def run_sql(config: Config, sql: str, fmt: str, parameters: Mapping[str, Any] | None = None,
            names: Mapping[str, str] | None = None) -> int:
    """One query's result as it streams, with the names this machine knows in place of their hashes (unless
    --no-names). The embedded store stops the query after CH_TIMEOUT, so no query holds its lock for ever."""
    try:
        with _reading_store(config) as store, store.stream(sql, parameters,
                                                           config.ch_timeout if config.embedded else None) as result:
            columns, rows = result
            for line in format_lines(columns, (readable_row(columns, row, names or {}) for row in rows), fmt,
                                     terminal_width()):
                print(line)
    except Exception as exc:
        if not config.embedded or "TIMEOUT_EXCEEDED" not in str(exc):
            raise
        raise UserError(f"the query ran past CH_TIMEOUT ({config.ch_timeout:g} s), the longest a query may hold the "
                        "embedded store: narrow it, or raise CH_TIMEOUT") from None
    return EXIT_OK


def keys_for_names(values: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """Query parameters with a project or session given by the name this machine shows turned into its key: the
    tables hold keys (keyed hashes), and only this machine's name map knows which name each stands for."""
    keys_of: dict[str, list[str]] = {}
    for key, name in names.items():
        keys_of.setdefault(name, []).append(key)
    translated = dict(values)
    for param in NAME_PARAMETERS:
        value = values.get(param)
        keys = keys_of.get(value, []) if isinstance(value, str) and value not in names else []
        if len(keys) > 1:
            raise UserError(f"--param {param}: {value!r} is the name of {len(keys)} keys on this machine "
                            f"({', '.join(sorted(keys))}); give one of them", EXIT_USAGE)
        if keys:
            translated[param] = keys[0]
    return translated


def run_query(config: Config, name: str, assignments: Sequence[str], fmt: str, verbose: bool = False,
              names: Mapping[str, str] | None = None, known_names: Mapping[str, str] | None = None) -> int:
    """--query NAME [--param KEY=VALUE ...]: a named query of queries.sql; `list` prints the names instead.
    A `project` or `session` parameter takes a name of `known_names` (this machine's map) or a key."""
    queries = load_queries()
    if name == "list":
        if assignments:
            raise UserError("--query list takes no --param", EXIT_USAGE)
        print(query_list_text(queries, terminal_width() or 100, verbose) if fmt == "table" else
              format_table(*query_list(queries), fmt))
        return EXIT_OK
    query = find_query(queries, name)
    parameters = keys_for_names(query_parameters(query, assignments), known_names or {})
    return run_sql(config, query.sql, fmt, parameters, names)


def run_alerts(config: Config, quiet: bool) -> int:
    """--alerts: one line per breach (notified now, or when and by whom before), then the budgets within limits."""
    if not config.budgets.any:
        raise UserError("--alerts: no budget is set (CCUSAGE_BUDGET_DAILY_USD, CCUSAGE_BUDGET_MONTHLY_USD or "
                        "CCUSAGE_BLOCK_TOKEN_LIMIT)", EXIT_USAGE)
    with _reading_store(config) as store:
        watched = watch_budgets(store, config)
    for line in watched.breaches if quiet else watched.lines():
        print(config.redact(line))
    return EXIT_BUDGET if watched.exceeded else EXIT_OK


def run_main(body: Callable[[], int], hide: Callable[[str], str], interrupted: str = "interrupted") -> int:
    """Both scripts' ending: expected failures as one `error:` line without secrets and their exit code; a
    database or OS error in the middle of a run as one line too. Anything else is a bug and keeps its traceback."""
    logging.getLogger("clickhouse_connect").addHandler(logging.NullHandler())  # its failures become our one line
    try:
        return body()
    except UserError as exc:
        print(f"error: {hide(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"error: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        if isinstance(exc, OSError) and exc.filename:  # a file of ours (state, lock, store folder): not the database
            print(f"error: cannot use {hide(str(exc.filename))}: {exc.strerror}", file=sys.stderr)
            return EXIT_FAILED
        if type(exc).__module__.startswith("clickhouse_connect") or isinstance(exc, OSError):
            print(f"error: database: {hide(first_line(str(exc)))}", file=sys.stderr)
            return EXIT_FAILED
        raise


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = dict(os.environ if env is None else env)
    hidden = secret_texts(env)

    def body() -> int:
        check_modes(args)
        if args.check:
            return run_check(env, args)
        config = Config.from_env(env, args)
        known_names = LocalState(config.state_dir()).names()
        names = {} if args.no_names else known_names
        modes: dict[str, Callable[[], int]] = {  # one per option that is not an import (check_modes: at most one)
            "dashboard": lambda: write_dashboard(config, args.dashboard, args.quiet, names),
            "query": lambda: run_query(config, args.query, args.param, args.format, args.verbose, names,
                                       known_names),
            "sql": lambda: run_sql(config, args.sql, args.format, names=names),
            "alerts": lambda: run_alerts(config, args.quiet),
        }
        mode = next((run for option, run in modes.items() if getattr(args, option) not in (None, False)), None)
        if mode:
            return mode()
        result = ClickHouseImporter(config, quiet=args.quiet, force=args.force, defer=args.defer).run()
        if not args.quiet:
            print(render_summary(result, config))
        else:
            problems = [f"error: {e}" for e in result.errors] + list(result.budgets.breaches if result.budgets else ())
            problems += [f"error: {result.share.problem}"] if result.share and result.share.problem else []
            if problems:
                print(config.redact("\n".join(problems)), file=sys.stderr)
        return result.exit_code

    return run_main(body, lambda text: redact(text, hidden))


if __name__ == "__main__":
    sys.exit(main())
