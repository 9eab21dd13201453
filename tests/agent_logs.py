"""Synthetic Codex CLI, Gemini CLI and OpenCode logs with an independently computed ccusage ground truth.

Each generator writes one agent's data folder in its real on-disk format and returns that folder's ground
truth, computed by re-reading what is on disk with the counting rules of ccusage 20.0.24 (never by running
ccusage), so tests can compare ccusage, or an importer, against numbers from elsewhere::

    truth = generate_codex(tmp_path / "codex", seed=3, days=10, tz="America/Los_Angeles")
    truth.by_day()               # {"2026-11-12": Usage(input=..., ...), ...}
    truth.by_session()           # {"2026/11/12/rollout-2026-11-12T08-01-09-0199...": Usage(...)}
    append_codex_activity(tmp_path / "codex", start=now - timedelta(hours=1))
    truth = codex_truth(tmp_path / "codex")   # recompute after changing files

| agent    | point ccusage at it with | generator           | re-reader        |
|----------|--------------------------|---------------------|------------------|
| codex    | CODEX_HOME=<root>        | ``generate_codex``    | ``codex_truth``    |
| gemini   | GEMINI_DATA_DIR=<root>   | ``generate_gemini``   | ``gemini_truth``   |
| opencode | OPENCODE_DATA_DIR=<root> | ``generate_opencode`` | ``opencode_truth`` |

Every ``Usage`` holds what ccusage reports: ``input`` (inputTokens), ``output`` (outputTokens),
``cache_creation``, ``cache_read``, ``total`` (totalTokens) and ``reasoning``. What ``reasoning`` means, and
whether it is inside ``output``, differs per agent: see each generator's docstring. The rules were measured
against the pinned binary; ccusage's repository source of the time (20.0.11) counts Codex differently (it
counts repeated token_count lines and only skips sub-agent replays). tests/fixtures/agents/README.md
describes the reports. Only the standard library is used.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import sqlite3
import string
import subprocess
import sys
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = [
    "CODEX_MODELS",
    "ENV_VARS",
    "GEMINI_MODELS",
    "OPENCODE_MODELS",
    "RECORDINGS",
    "AgentTruth",
    "Event",
    "Report",
    "Usage",
    "append_codex_activity",
    "append_gemini_activity",
    "append_opencode_activity",
    "codex_truth",
    "delete_older_than",
    "gemini_truth",
    "generate_codex",
    "generate_gemini",
    "generate_machine",
    "generate_opencode",
    "machine_env",
    "opencode_truth",
]

#: The variable that points ccusage 20.0.24 at each agent's data folder.
ENV_VARS: dict[str, str] = {
    "claude": "CLAUDE_CONFIG_DIR",
    "codex": "CODEX_HOME",
    "gemini": "GEMINI_DATA_DIR",
    "opencode": "OPENCODE_DATA_DIR",
}

#: Models priced by ccusage 20.0.24 (offline), with their weight as a session's model.
CODEX_MODELS: dict[str, int] = {"gpt-5-codex": 40, "gpt-5.1-codex": 30, "gpt-5": 15, "gpt-5.1-codex-mini": 15}
GEMINI_MODELS: dict[str, int] = {
    "gemini-2.5-pro": 40,
    "gemini-2.5-flash": 30,
    "gemini-3-pro-preview": 20,
    "gemini-2.5-flash-lite": 10,
}
#: (providerID, modelID): weight. "big-pickle" is the one model ccusage cannot price (missingPricing).
OPENCODE_MODELS: dict[tuple[str, str], int] = {
    ("anthropic", "claude-sonnet-4-5"): 35,
    ("anthropic", "claude-opus-4-5"): 10,
    ("openai", "gpt-5.1-codex"): 20,
    ("google", "gemini-2.5-pro"): 10,
    ("github-copilot", "claude-sonnet-4.5"): 12,
    ("opencode", "grok-code"): 8,
    ("opencode", "big-pickle"): 5,
}
#: USD per million tokens (input, output, cache read, cache write) OpenCode stores as ``cost``; other
#: providers store 0, and ccusage then prices the message itself.
_OPENCODE_PRICES: dict[str, tuple[float, float, float, float]] = {
    "claude-sonnet-4-5": (3.0, 15.0, 0.3, 3.75),
    "claude-opus-4-5": (5.0, 25.0, 0.5, 6.25),
    "gpt-5.1-codex": (1.25, 10.0, 0.125, 0.0),
    "gemini-2.5-pro": (1.25, 10.0, 0.31, 0.0),
}

_PROJECT_DIRS = (
    "/Users/alice/src/api",
    "/Users/alice/src/web-frontend",
    "/home/bob/work/infra/terraform",
    "/home/bob/work/ml_pipeline",
    "/Users/carol/code/mobile.app",
)
_PARAGRAPH = (
    "Run the failing test first, then read the traceback and fix the parser. "
    "The migration adds an index; check the query plan before merging. "
    "naïve café résumé 日本語 ✓ — refactor the loop, cache the schema, retry on timeout. "
)
_LOREM = _PARAGRAPH * 40
_SECOND = timedelta(seconds=1)


# --------------------------------------------------------------------------------------
# Ground truth: shared types
# --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Usage:
    """Token counts as ccusage reports them (see the module docstring for ``reasoning``)."""

    input: int = 0
    output: int = 0
    cache_creation: int = 0
    cache_read: int = 0
    reasoning: int = 0
    total: int = 0

    def add(self, other: Usage) -> None:
        """Add ``other`` in place."""
        self.input += other.input
        self.output += other.output
        self.cache_creation += other.cache_creation
        self.cache_read += other.cache_read
        self.reasoning += other.reasoning
        self.total += other.total

    def counts(self) -> tuple[int, int, int, int, int]:
        """(input, output, cache_creation, cache_read, total): what every ccusage row carries."""
        return self.input, self.output, self.cache_creation, self.cache_read, self.total

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict."""
        return {
            "input": self.input,
            "output": self.output,
            "cache_creation": self.cache_creation,
            "cache_read": self.cache_read,
            "reasoning": self.reasoning,
            "total": self.total,
        }


@dataclass(slots=True)
class Event:
    """One usage event that survived ccusage's rules."""

    timestamp: datetime  # UTC, millisecond precision
    model: str
    session: str  # ccusage's session id
    usage: Usage
    source: str  # the file (or "opencode.db") it was read from
    key: Hashable  # what ccusage de-duplicates on
    fallback_model: bool = False  # Codex: no turn_context yet, ccusage assumed gpt-5
    stored_cost: float | None = None  # OpenCode: the message's own cost, when > 0


Report = Literal["daily", "session"]
"""Which ccusage 20.0.24 report a helper mirrors. They differ for Codex only: ``daily`` drops an event
identical (timestamp, model and all counts) to one in any other file, ``session`` only within the same
session, so a rollout present in both sessions/ and archived_sessions/ counts once per day but twice in
the session report (once per session id). Unified reports follow the same split."""


@dataclass
class AgentTruth:
    """The events ccusage counts for one agent's folder, plus aggregation helpers.

    ``stats`` counts what was read, including every trap; ``naive`` is what a reader that ignores
    ccusage's rules would count (so a test can show that the traps matter).
    """

    agent: str
    root: Path
    events: dict[Report, list[Event]]
    stats: dict[str, int] = field(default_factory=dict)
    naive: Usage = field(default_factory=Usage)

    def total(self, report: Report = "daily") -> Usage:
        """Totals over everything (a report's ``totals``)."""
        return self._group(report, lambda event: None).get(None, Usage())

    def by_day(self, tz: str = "UTC", report: Report = "daily") -> dict[str, Usage]:
        """Totals per ``YYYY-MM-DD`` in the IANA zone ``tz`` (``ccusage <agent> daily --timezone tz``)."""
        zone = ZoneInfo(tz)
        return self._group(report, lambda event: event.timestamp.astimezone(zone).date().isoformat())

    def by_day_model(self, tz: str = "UTC", report: Report = "daily") -> dict[tuple[str, str], Usage]:
        """Totals per (day, model): Codex's ``models`` and the others' ``modelBreakdowns``."""
        zone = ZoneInfo(tz)
        return self._group(report, lambda event: (event.timestamp.astimezone(zone).date().isoformat(), event.model))

    def by_model(self, report: Report = "daily") -> dict[str, Usage]:
        """Totals per model name."""
        return self._group(report, lambda event: event.model)

    def by_session(self, report: Report = "session") -> dict[str, Usage]:
        """Totals per ccusage session id (``ccusage <agent> session``)."""
        return self._group(report, lambda event: event.session)

    def by_session_model(self, report: Report = "session") -> dict[tuple[str, str], Usage]:
        """Totals per (session, model): Codex's session ``models`` and the others' ``modelBreakdowns``."""
        return self._group(report, lambda event: (event.session, event.model))

    def last_activity(self, report: Report = "session") -> dict[str, datetime]:
        """Latest event per session (``lastActivity``)."""
        latest: dict[str, datetime] = {}
        for event in self.events[report]:
            latest[event.session] = max(latest.get(event.session, event.timestamp), event.timestamp)
        return latest

    def fallback_models(self, report: Report = "daily") -> set[tuple[str, str]]:
        """(UTC day, model) pairs that ccusage marks ``isFallback`` (Codex)."""
        return {
            (event.timestamp.date().isoformat(), event.model) for event in self.events[report] if event.fallback_model
        }

    def stored_costs(self) -> dict[str, float]:
        """Sum of the stored costs of sessions whose every message has one (OpenCode)."""
        sums: dict[str, float] = {}
        missing: set[str] = set()
        for event in self.events["session"]:
            if event.stored_cost is None:
                missing.add(event.session)
            else:
                sums[event.session] = sums.get(event.session, 0.0) + event.stored_cost
        return {session: cost for session, cost in sums.items() if session not in missing}

    def _group(self, report: Report, key: Callable[[Event], Hashable]) -> dict:
        groups: dict = {}
        for event in self.events[report]:
            groups.setdefault(key(event), Usage()).add(event.usage)
        return groups


# --------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _iso(value: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, as all three agents write it."""
    return _utc(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _end(end: datetime | None) -> datetime:
    return _utc(end) if end else datetime.now(UTC).replace(second=0, microsecond=0)


def _starts(rng: random.Random, end: datetime, days: float, count: int) -> list[datetime]:
    """Session starts spread over ``days`` before ``end``, leaving room to finish before ``end``."""
    span = timedelta(days=days) - timedelta(minutes=40)
    return sorted(_ms(end - timedelta(minutes=40) - span * rng.random()) for _ in range(count))


def _text(rng: random.Random, shortest: int, longest: int) -> str:
    size = rng.randint(shortest, longest)
    start = rng.randrange(len(_LOREM) - size)
    return _LOREM[start : start + size]


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(4 * digits):0{digits}x}"


def _uuid4(rng: random.Random) -> str:
    h = _hex(rng, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[rng.randrange(4)]}{h[17:20]}-{h[20:]}"


def _uuid7(rng: random.Random, at: datetime) -> str:
    """A time-ordered UUIDv7 like the ids Codex gives its threads."""
    stamp = f"{int(at.timestamp() * 1000):012x}"
    tail = _hex(rng, 19)
    return f"{stamp[:8]}-{stamp[8:]}-7{tail[:3]}-{'89ab'[rng.randrange(4)]}{tail[3:6]}-{tail[7:19]}"


def _pick(rng: random.Random, weights: dict) -> object:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _set_mtime(path: Path, at: datetime) -> None:
    stamp = _utc(at).timestamp()
    os.utime(path, (stamp, stamp))


def _write_lines(path: Path, lines: list[str], *, append: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = ""
    if append and path.exists() and path.stat().st_size:
        with path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            prefix = "" if fh.read(1) == b"\n" else "\n"
    with path.open("a" if append else "w", encoding="utf-8", newline="\n") as fh:
        fh.write(prefix + "\n".join(lines) + "\n")


def _compact(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class _Timeline:
    """The clock of a generated session; it never runs past ``deadline`` (when set)."""

    rng: random.Random
    now: datetime
    deadline: datetime | None = None

    def _advance(self, low: float, high: float) -> datetime:
        self.now = _ms(self.now + timedelta(seconds=self.rng.uniform(low, high)))
        if self.deadline is not None and self.now > self.deadline:
            self.now = self.deadline
        return self.now

    def _pause(self, resumed: bool) -> None:
        """Think time before a prompt; now and then the user comes back hours later, maybe the next day."""
        if not resumed:
            self._advance(2, 20)
            return
        self._advance(20, 600)
        if self.rng.random() < 0.05 and (self.deadline is None or self.now + timedelta(hours=6) < self.deadline):
            self._advance(3_600, 5 * 3_600)


_MARGIN = timedelta(minutes=30)  # no new turn this close to the end: turns take a few minutes


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Regular files under ``folder`` ending in one of ``suffixes``, in code-point order."""
    if not folder.is_dir():
        return []
    found = [path for path in folder.rglob("*") if path.is_file() and path.name.endswith(suffixes)]
    return sorted(found, key=str)


# --------------------------------------------------------------------------------------
# Codex CLI
# --------------------------------------------------------------------------------------

_CODEX_FIELDS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens")
_CODEX_REPLAY_GAP = timedelta(milliseconds=1000)
_CODEX_FALLBACK_MODEL = "gpt-5"


class _Rollout(_Timeline):
    """The lines of one Codex rollout file (one thread: a session, a fork or a sub-agent)."""

    def __init__(
        self,
        rng: random.Random,
        start: datetime,
        *,
        cwd: str,
        legacy: bool = False,
        forked_from: str | None = None,
        spawned_by: str | None = None,
    ) -> None:
        self.rng, self.now, self.start, self.cwd, self.legacy = rng, start, start, cwd, legacy
        self.thread_id = _uuid7(rng, start)
        self.lines: list[tuple[datetime, dict]] = []
        self.total = dict.fromkeys(_CODEX_FIELDS, 0)
        self.context = rng.randint(7_000, 13_000)  # instructions and tools
        self.model: str | None = None
        self.info_events = 0
        self._last: dict[str, int] = {}
        self.archived = False
        self.children: list[_Rollout] = []
        meta: dict = {"id": self.thread_id}
        if forked_from:
            meta["forked_from_id"] = forked_from
        meta |= {
            "timestamp": _iso(start),
            "cwd": cwd,
            "originator": "codex_cli_rs",
            "cli_version": rng.choice(("0.58.0", "0.61.0", "0.63.0")),
            "instructions": None,
            "source": {"subagent": {"thread_spawn": {"parent_thread_id": spawned_by, "depth": 1}}}
            if spawned_by
            else "cli",
            "model_provider": "openai",
            "git": {"commit_hash": _hex(rng, 40), "branch": "main", "repository_url": "git@github.com:acme/app.git"},
        }
        self._emit("session_meta", meta, at=start)

    # -- writing -----------------------------------------------------------------------

    def _emit(self, kind: str, payload: dict, *, at: datetime | None = None) -> None:
        self.lines.append((_ms(at or self.now), {"timestamp": None, "type": kind, "payload": payload}))

    def _tick(self, low: float, high: float) -> datetime:
        return self._advance(low, high)

    def replay(self, parent: _Rollout) -> None:
        """Copy the parent's history in one burst at the fork instant, as Codex does for forks and sub-agents."""
        instant = self.now
        for step, (_, obj) in enumerate(parent.lines, start=1):
            self.lines.append((instant + timedelta(milliseconds=step), copy.deepcopy(obj)))
        self.total, self.model, self.context = dict(parent.total), parent.model, parent.context
        self.now = instant + timedelta(milliseconds=len(parent.lines))
        self._tick(3, 25)

    def turn(
        self, model: str, calls: int, *, spawn: Callable[[_Rollout], None] | None = None, spawn_chance: float = 0.15
    ) -> None:
        """A user prompt, a turn_context naming the model (unless legacy), model calls, the answer."""
        rng = self.rng
        self._pause(bool(self.info_events))
        prompt = _text(rng, 20, 300)
        content = [{"type": "input_text", "text": prompt}]
        self._emit("response_item", {"type": "message", "role": "user", "content": content})
        self._emit("event_msg", {"type": "user_message", "message": prompt, "images": []})
        if not self.legacy:
            self._emit(
                "turn_context",
                {
                    "cwd": self.cwd,
                    "approval_policy": "on-request",
                    "sandbox_policy": {"mode": "workspace-write", "network_access": False},
                    "model": model,
                    "effort": rng.choice(("low", "medium", "high")),
                    "summary": "auto",
                },
            )
            self.model = model
        if rng.random() < 0.4:  # a rate-limit snapshot before any usage is known
            self._emit("event_msg", {"type": "token_count", "info": None, "rate_limits": self._rate_limits()})
        for call in range(calls):
            last = call == calls - 1
            self._call(last)
            if spawn and not last and not self.legacy and self.info_events >= 2 and rng.random() < spawn_chance:
                spawn(self)
                spawn = None

    def _call(self, last: bool) -> None:
        rng = self.rng
        self._tick(2, 45)
        if rng.random() < 0.6:
            summary = [{"type": "summary_text", "text": _text(rng, 20, 160)}]
            self._emit("response_item", {"type": "reasoning", "summary": summary, "content": None,
                                         "encrypted_content": "gAAAAA" + _hex(rng, 48)})
        call_id = f"call_{_hex(rng, 24)}"
        if last:
            text = _text(rng, 30, 400)
            self._emit("response_item", {"type": "message", "role": "assistant",
                                         "content": [{"type": "output_text", "text": text}]})
            self._emit("event_msg", {"type": "agent_message", "message": text})
        else:
            arguments = _compact({"command": ["bash", "-lc", _text(rng, 5, 60)], "workdir": self.cwd})
            self._emit("response_item", {"type": "function_call", "name": "shell", "arguments": arguments,
                                         "call_id": call_id})
        info = {"total_token_usage": self._usage(), "last_token_usage": self._last, "model_context_window": 272_000}
        self._emit("event_msg", {"type": "token_count", "info": info, "rate_limits": self._rate_limits()})
        self.info_events += 1
        if rng.random() < 0.3:  # rate limits refreshed: the same totals again
            self._tick(0.2, 2)
            self._emit("event_msg", {"type": "token_count", "info": copy.deepcopy(info),
                                     "rate_limits": self._rate_limits()})
        if not last:
            self._tick(0.5, 12)
            self._emit("response_item", {"type": "function_call_output", "call_id": call_id,
                                         "output": _compact({"output": _text(rng, 10, 300),
                                                             "metadata": {"exit_code": 0}})})

    def _usage(self) -> dict:
        """One call's usage: input includes the cached part, output includes reasoning, total = in + out."""
        rng = self.rng
        self.context += rng.randint(200, 6_000)
        prompt = self.context
        cached = 0 if self.info_events == 0 else int(prompt * rng.uniform(0.5, 0.97)) // 128 * 128
        output = rng.randint(30, 2_500)
        reasoning = 0 if rng.random() < 0.25 else rng.randint(0, output)
        self._last = {
            "input_tokens": prompt,
            "cached_input_tokens": cached,
            "output_tokens": output,
            "reasoning_output_tokens": reasoning,
            "total_tokens": prompt + output,
        }
        self.context += output
        if self.context > 200_000:  # auto-compaction
            self.context = rng.randint(20_000, 40_000)
        self.total = {key: self.total[key] + self._last[key] for key in _CODEX_FIELDS}
        return dict(self.total)

    def _rate_limits(self) -> dict:
        rng, reset = self.rng, int(self.now.timestamp())
        return {
            "primary": {"used_percent": round(rng.uniform(0, 90), 1), "window_minutes": 300,
                        "resets_at": reset + rng.randint(60, 18_000)},
            "secondary": {"used_percent": round(rng.uniform(0, 60), 1), "window_minutes": 10_080,
                          "resets_at": reset + rng.randint(3_600, 600_000)},
        }

    # -- files ---------------------------------------------------------------------------

    def relative_path(self, zone: ZoneInfo) -> str:
        """sessions/ layout: the thread's start in the user's local time."""
        local = self.start.astimezone(zone)
        return f"{local:%Y/%m/%d}/rollout-{local:%Y-%m-%dT%H-%M-%S}-{self.thread_id}.jsonl"

    def rendered(self) -> list[str]:
        out = []
        for at, obj in self.lines:
            obj["timestamp"] = _iso(at)
            out.append(_compact(obj))
        return out


def generate_codex(
    root: Path,
    *,
    seed: int = 1,
    days: float = 10,
    sessions: int = 14,
    end: datetime | None = None,
    tz: str = "UTC",
    turns_per_session: int = 5,
    events_total: int | None = None,
    archived_copies: bool = True,
) -> AgentTruth:
    """Write a Codex home (``sessions/YYYY/MM/DD/rollout-*.jsonl``, ``archived_sessions/``) and its truth.

    Rollout paths and names use the thread's start in the IANA zone ``tz`` (the user's local time), so a
    path's date can differ from the UTC day of its usage. Traps, all counted in ``stats``:
    ``token_count`` lines whose ``info.total_token_usage`` is cumulative, repeated ``token_count`` lines
    with unchanged totals (rate-limit refreshes), ``info: null``, model changes through ``turn_context``,
    a legacy thread without any ``turn_context`` (ccusage prices it as gpt-5, ``isFallback``), forks
    (``forked_from_id``) and sub-agents (``source.subagent.thread_spawn``) whose file opens with the
    parent's whole history re-stamped at the fork instant, archived rollouts, and (``archived_copies``)
    one archived rollout still present in sessions/ too. ``events_total`` sizes the data set in
    ``token_count`` events instead of ``sessions``.

    ccusage 20.0.24 counts (``codex_truth``): one event per ``event_msg``/``token_count`` whose info has
    usage, except one whose ``total_token_usage`` equals the previous one in the file, and except, in a fork
    or sub-agent file whose first two such lines are at most 1 s apart, the opening burst of lines each at
    most 1 s after the previous one (the replay; its totals still become the baseline). The event's usage
    is ``last_token_usage``, else the change of the total. ``input`` = input - cached (inputTokens),
    ``cache_read`` = cached, ``cache_creation`` = 0, ``output`` = output_tokens, which includes reasoning;
    ``reasoning`` = reasoning_output_tokens (reasoningOutputTokens, informational, inside ``output``);
    ``total`` = total_tokens = input + output. The model is the last ``turn_context``'s. The session id is
    the path under sessions/ or archived_sessions/ without ``.jsonl``. See ``Report`` for de-duplication.
    """
    rng = random.Random(seed)
    end, zone = _end(end), ZoneInfo(tz)
    if events_total is not None:
        sessions = max(3, round(events_total / (turns_per_session * 3.9)))
    finished: list[_Rollout] = []
    for index, start in enumerate(_starts(rng, end, days, sessions)):
        parents = [r for r in finished if r.info_events >= 2 and r.lines[-1][0] < start]
        cwd = rng.choice(_PROJECT_DIRS)
        if index >= 2 and parents and (index == 3 or rng.random() < 0.2):
            parent = rng.choice(parents)
            rollout = _Rollout(rng, start, cwd=parent.cwd, forked_from=parent.thread_id)
            rollout.replay(parent)
        else:
            rollout = _Rollout(rng, start, cwd=cwd, legacy=index == 1)
        _run_turns(rollout, end, turns_per_session, spawn=_spawner(end), showcase=index == 2)
        finished.append(rollout)
    threads = [thread for rollout in finished for thread in (rollout, *rollout.children)]
    _archive(rng, threads, end, days)
    for thread in threads:
        paths = [root / "sessions" / thread.relative_path(zone)] if not thread.archived else []
        if thread.archived:
            paths.append(root / "archived_sessions" / Path(thread.relative_path(zone)).name)
            if archived_copies and thread is next(t for t in threads if t.archived):
                paths.append(root / "sessions" / thread.relative_path(zone))  # a stale copy left behind
        for path in paths:
            _write_lines(path, thread.rendered())
            _set_mtime(path, thread.lines[-1][0])
    return codex_truth(root)


def _run_turns(
    rollout: _Rollout,
    end: datetime,
    turns: int,
    *,
    spawn: Callable[[_Rollout], None] | None,
    showcase: bool = False,
    margin: timedelta = _MARGIN,
) -> None:
    """Turns until ``end - margin``, none past ``end``; a ``showcase`` thread surely changes model and
    spawns a sub-agent."""
    rng = rollout.rng
    rollout.deadline = end
    count = max(1, round(turns * rng.uniform(0.5, 1.5)))
    for number in range(max(count, 3) if showcase else count):
        if rollout.now > end - margin:
            break
        model = rollout.model if rollout.model and rng.random() > 0.15 else str(_pick(rng, CODEX_MODELS))
        if showcase and number == 1:
            model = next(name for name in CODEX_MODELS if name != rollout.model)
        calls = rng.randint(2, 5) if showcase else rng.randint(1, 5)
        rollout.turn(model, calls, spawn=None if rollout.children else spawn, spawn_chance=1.0 if showcase else 0.15)


def _spawner(end: datetime) -> Callable[[_Rollout], None]:
    """A sub-agent started mid-turn: its own rollout replays the parent's history so far."""

    def spawn(parent: _Rollout) -> None:
        if parent.now > end - _MARGIN:  # no time left for the sub-agent's own turns
            return
        child = _Rollout(parent.rng, parent.now, cwd=parent.cwd, spawned_by=parent.thread_id)
        child.replay(parent)
        _run_turns(child, end, 2, spawn=None)
        parent.children.append(child)

    return spawn


def _archive(rng: random.Random, threads: list[_Rollout], end: datetime, days: float) -> None:
    """Archive about a third of the threads that ended in the older half of the period (at least one)."""
    old = [t for t in threads if t.lines[-1][0] < end - timedelta(days=days / 2)]
    for thread in old:
        thread.archived = rng.random() < 0.35
    if old and not any(t.archived for t in old):
        old[0].archived = True


def append_codex_activity(
    root: Path, *, start: datetime, minutes: int = 60, turns: int = 4, seed: int = 2, tz: str = "UTC"
) -> AgentTruth:
    """Continue the newest rollout under sessions/ and start a new thread, from ``start`` on.

    New lines run from ``start`` for about ``minutes`` minutes (never past ``start + minutes``). The
    continued rollout keeps its cumulative totals and model. Returns the truth of the whole home.
    """
    rng = random.Random(seed)
    start, stop = _ms(_utc(start)), _utc(start) + timedelta(minutes=minutes)
    existing = _files(root / "sessions", (".jsonl",))
    if existing:
        newest = max(existing, key=lambda path: path.stat().st_mtime)
        continued = _resume_rollout(rng, newest, start)
        _run_turns(continued, stop, turns, spawn=None, margin=_append_margin(minutes))
        if continued.lines:
            _write_lines(newest, continued.rendered(), append=True)
            _set_mtime(newest, continued.lines[-1][0])
    fresh = _Rollout(rng, start + timedelta(seconds=30), cwd=rng.choice(_PROJECT_DIRS))
    _run_turns(fresh, stop, turns, spawn=None, margin=_append_margin(minutes))
    path = root / "sessions" / fresh.relative_path(ZoneInfo(tz))
    _write_lines(path, fresh.rendered())
    _set_mtime(path, fresh.lines[-1][0])
    return codex_truth(root)


def _append_margin(minutes: int) -> timedelta:
    return min(_MARGIN, timedelta(minutes=minutes / 3))


def _resume_rollout(rng: random.Random, path: Path, start: datetime) -> _Rollout:
    """A rollout whose state (totals, model, cwd) continues ``path``; only its new lines get written."""
    state = _Rollout(rng, start, cwd="/")
    state.lines = []  # only new lines are written; the file already has its session_meta
    for raw in path.read_text(encoding="utf-8").splitlines():
        obj = json.loads(raw)
        payload = obj.get("payload") or {}
        if obj.get("type") == "turn_context" and payload.get("model"):
            state.model, state.cwd = payload["model"], payload.get("cwd", state.cwd)
        info = payload.get("info") if payload.get("type") == "token_count" else None
        if isinstance(info, dict) and isinstance(info.get("total_token_usage"), dict):
            state.total = {key: info["total_token_usage"].get(key, 0) for key in _CODEX_FIELDS}
            state.info_events += 1
    state.context = max(state.context, 20_000)
    return state


def codex_truth(root: Path) -> AgentTruth:
    """Apply the ccusage 20.0.24 Codex rules (see ``generate_codex``) to every rollout under ``root``."""
    names = ("files", "archived_files", "lines", "token_counts", "info_null", "unchanged_totals", "replayed",
             "forks", "subagents", "model_changes", "fallback_events", "cross_file_duplicates",
             "path_date_differs")
    stats = dict.fromkeys(names, 0)
    naive = Usage()
    candidates: list[Event] = []
    for source, path in _codex_files(root):
        stats["files"] += 1
        stats["archived_files"] += source.name == "archived_sessions"
        session = str(path.relative_to(source))[: -len(".jsonl")]
        candidates += _read_rollout(path, session, stats, naive)
        date_dirs, started = Path(session).parts[:3], _session_meta(path).get("line_timestamp")
        if len(date_dirs) == 3 and isinstance(started, str) and "-".join(date_dirs) != started[:10]:
            stats["path_date_differs"] += 1
    daily = _dedupe(candidates, lambda event: event.key)
    stats["cross_file_duplicates"] = len(candidates) - len(daily)
    per_session = _dedupe(candidates, lambda event: (event.session, event.key))
    return AgentTruth("codex", root, {"daily": daily, "session": per_session}, stats, naive)


def _codex_files(root: Path) -> list[tuple[Path, Path]]:
    """(source dir, file) pairs: sessions/ then archived_sessions/ (or root itself when neither exists);
    an archived file with the same relative path as an active one is skipped."""
    sources = [root / name for name in ("sessions", "archived_sessions") if (root / name).is_dir()] or [root]
    seen: set[Path] = set()
    pairs = []
    for source in sources:
        for path in _files(source, (".jsonl",)):
            relative = path.relative_to(source)
            if relative not in seen:
                seen.add(relative)
                pairs.append((source, path))
    return pairs


def _read_rollout(path: Path, session: str, stats: dict[str, int], naive: Usage) -> list[Event]:
    """The counted events of one rollout file, in file order."""
    records = []
    for raw in path.read_bytes().split(b"\n"):
        stats["lines"] += bool(raw)
        if b'"type":"turn_context"' not in raw and not (
            b'"type":"event_msg"' in raw and b'"type":"token_count"' in raw
        ):
            continue
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if isinstance(obj, dict):
            records.append(obj)
    meta = _session_meta(path)
    source = meta.get("source")
    spawned = isinstance(source, dict) and isinstance(source.get("subagent"), dict) and bool(
        source["subagent"].get("thread_spawn"))
    forked = bool(meta.get("forked_from_id"))
    stats["forks"] += forked
    stats["subagents"] += spawned
    usage_times = [_parse_iso(r["timestamp"]) for r in records if _usage_info(r) is not None]
    skipping = (forked or spawned) and len(usage_times) >= 2 and usage_times[1] - usage_times[0] <= _CODEX_REPLAY_GAP
    previous_time: datetime | None = None
    previous_total: dict | None = None
    model: str | None = None
    events: list[Event] = []
    for record in records:
        payload = record.get("payload") if isinstance(record.get("payload"), dict) else {}
        if record.get("type") == "turn_context":
            named = _model_name(payload)
            if named:
                stats["model_changes"] += model is not None and named != model
                model = named
            continue
        stats["token_counts"] += 1
        info = _usage_info(record)
        if info is None:
            stats["info_null"] += payload.get("info") is None
            continue
        when = _parse_iso(record["timestamp"])
        total, last = _counts(info.get("total_token_usage")), _counts(info.get("last_token_usage"))
        if last is not None:
            naive.add(_codex_usage(last))
        if skipping:
            if previous_time is None or when - previous_time <= _CODEX_REPLAY_GAP:
                previous_time = when
                previous_total = total or previous_total
                stats["replayed"] += 1
                continue
            skipping = False
        if total is not None and total == previous_total:
            previous_total = total
            stats["unchanged_totals"] += 1
            continue
        raw = last if last is not None else _subtract(total, previous_total)
        previous_total = total or previous_total
        if not any(raw[key] for key in _CODEX_FIELDS[:4]):
            continue
        named = _model_name(payload) or _model_name(info)
        if named:
            model = named
        fallback = model is None
        stats["fallback_events"] += fallback
        usage = _codex_usage(raw)
        key = (record["timestamp"], model or _CODEX_FALLBACK_MODEL, *(raw[k] for k in _CODEX_FIELDS))
        events.append(Event(_ms(when), model or _CODEX_FALLBACK_MODEL, session, usage, str(path), key, fallback))
    return events


def _session_meta(path: Path) -> dict:
    """The payload of the file's opening session_meta line (the thread's own), or {}."""
    with path.open("rb") as fh:
        try:
            first = json.loads(fh.readline())
        except ValueError:
            return {}
    if not isinstance(first, dict) or first.get("type") != "session_meta" or not isinstance(first.get("payload"), dict):
        return {}
    return first["payload"] | {"line_timestamp": first.get("timestamp")}


def _usage_info(record: dict) -> dict | None:
    """The info object of a token_count record that carries usage, else None."""
    payload = record.get("payload")
    if not isinstance(payload, dict) or record.get("type") != "event_msg" or payload.get("type") != "token_count":
        return None
    info = payload.get("info")
    if not isinstance(info, dict):
        return None
    if not isinstance(info.get("total_token_usage"), dict) and not isinstance(info.get("last_token_usage"), dict):
        return None
    return info


def _counts(value: object) -> dict[str, int] | None:
    if not isinstance(value, dict):
        return None
    counts = {}
    for key in _CODEX_FIELDS:
        number = value.get(key)
        counts[key] = max(0, int(number)) if isinstance(number, int | float) and not isinstance(number, bool) else 0
    if "total_tokens" not in value:  # legacy entries: ccusage recomputes it
        counts["total_tokens"] = counts["input_tokens"] + counts["output_tokens"]
    return counts


def _subtract(total: dict[str, int] | None, previous: dict[str, int] | None) -> dict[str, int]:
    total = total or dict.fromkeys(_CODEX_FIELDS, 0)
    return {key: max(0, total[key] - (previous or {}).get(key, 0)) for key in _CODEX_FIELDS}


def _codex_usage(raw: dict[str, int]) -> Usage:
    cached = min(raw["cached_input_tokens"], raw["input_tokens"])
    return Usage(
        input=raw["input_tokens"] - cached,
        output=raw["output_tokens"],
        cache_read=cached,
        reasoning=raw["reasoning_output_tokens"],
        total=raw["total_tokens"],
    )


def _model_name(payload: dict) -> str | None:
    for value in (payload.get("model"), payload.get("model_name"), (payload.get("metadata") or {}).get("model")):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _dedupe(events: list[Event], key: Callable[[Event], Hashable]) -> list[Event]:
    seen: set[Hashable] = set()
    kept = []
    for event in events:
        k = key(event)
        if k not in seen:
            seen.add(k)
            kept.append(event)
    return kept


# --------------------------------------------------------------------------------------
# Gemini CLI
# --------------------------------------------------------------------------------------


class _GeminiChat(_Timeline):
    """One Gemini CLI chat recording: JSONL records as ChatRecordingService appends them, or a legacy JSON."""

    def __init__(
        self, rng: random.Random, start: datetime, *, cwd: str, legacy: bool, parent: str | None = None
    ) -> None:
        self.rng, self.now, self.start, self.cwd, self.legacy, self.parent = rng, start, start, cwd, legacy, parent
        self.session_id = _uuid4(rng)
        self.project_hash = hashlib.sha256(cwd.encode()).hexdigest()
        self.records: list[dict] = []  # the .jsonl lines
        self.messages: dict[str, dict] = {}  # the conversation as the CLI holds it
        self.context = rng.randint(9_000, 16_000)
        self.model: str | None = None
        self.children: list[_GeminiChat] = []
        metadata = {"sessionId": self.session_id, "projectHash": self.project_hash, "startTime": _iso(start),
                    "lastUpdated": _iso(start)}
        if parent:
            metadata |= {"kind": "subagent", "directories": [cwd]}
        else:
            metadata["kind"] = "main"
        self.metadata = metadata
        self._append(metadata)

    def _append(self, record: dict) -> None:
        self.records.append(copy.deepcopy(record))

    def _tick(self, low: float, high: float) -> str:
        return _iso(self._advance(low, high))

    def _push(self, message: dict) -> None:
        self.messages[message["id"]] = message
        self._append(message)

    def _touch(self) -> None:
        self._append({"$set": {"lastUpdated": _iso(self.now)}})

    def turn(
        self,
        model: str,
        calls: int,
        *,
        spawn: Callable[[_GeminiChat], None] | None = None,
        spawn_chance: float = 0.2,
        rewind: bool | None = None,
        sync: bool | None = None,
    ) -> None:
        """A user prompt and ``calls`` model responses, recorded the way the CLI records them.

        ``rewind`` and ``sync`` force (True) or forbid (False) a ``$rewindTo`` before the prompt and a
        history-sync ``$set`` after the turn; None leaves them to chance.
        """
        rng = self.rng
        self._pause(bool(self.messages))
        users = [m["id"] for m in self.messages.values() if m["type"] == "user"]
        # /rewind: the CLI drops the later messages, ccusage still counts them
        if len(users) >= 2 and (rng.random() < 0.1 if rewind is None else rewind):
            self._append({"$rewindTo": users[-1]})
            ids = list(self.messages)
            for gone in ids[ids.index(users[-1]):]:
                del self.messages[gone]
        self._push({"id": _uuid4(rng), "timestamp": _iso(self.now), "type": "user",
                    "content": [{"text": _text(rng, 10, 300)}]})
        self._touch()
        self.model = model
        for call in range(calls):
            self._call(model, tool=call < calls - 1)
            if spawn and call < calls - 1 and rng.random() < spawn_chance:
                spawn(self)
                spawn = None
        if rng.random() < 0.08:
            self._push({"id": _uuid4(rng), "timestamp": _iso(self.now), "type": "info",
                        "content": "Request cancelled."})
        if rng.random() < 0.1 if sync is None else sync:  # history sync: the whole conversation, tokens too
            self._append({"$set": {"messages": list(self.messages.values()), "lastUpdated": _iso(self.now)}})

    def _call(self, model: str, *, tool: bool) -> None:
        rng = self.rng
        when = self._tick(2, 40)
        thoughts = [{"subject": "Planning", "description": _text(rng, 20, 120), "timestamp": when}]
        message = {"id": _uuid4(rng), "timestamp": when, "type": "gemini", "content": _text(rng, 20, 400),
                   "thoughts": thoughts, "tokens": None, "model": model}
        if rng.random() < 0.04:  # cancelled mid-stream: never gets tokens
            self._push(message)
            self._touch()
            return
        tokens = self._tokens(model)
        if rng.random() < 0.5:  # usage arrived first (queued): written once with tokens
            message["tokens"] = tokens
            self._push(message)
            self._touch()
        else:  # message first, then re-appended under the same id once usage arrives
            self._push(message)
            self._touch()
            message = dict(message, tokens=tokens)
            self._push(message)
        if tool:
            self._tick(0.5, 8)
            call = {"id": f"run_shell_command-{int(self.now.timestamp() * 1000)}-{_hex(rng, 12)}",
                    "name": "run_shell_command", "args": {"command": _text(rng, 5, 50)},
                    "result": [{"functionResponse": {"id": "x", "name": "run_shell_command",
                                                     "response": {"output": _text(rng, 10, 200)}}}],
                    "status": "success", "timestamp": _iso(self.now), "displayName": "Shell",
                    "description": "", "renderOutputAsMarkdown": False}
            self._push(dict(message, toolCalls=[call]))  # re-appended again, tokens unchanged

    def _tokens(self, model: str) -> dict:
        """Gemini API usage: input includes cached; total = input + output + thoughts + tool."""
        rng = self.rng
        self.context += rng.randint(300, 8_000)
        prompt = self.context
        cached = 0 if rng.random() < 0.35 else int(prompt * rng.uniform(0.3, 0.9))
        output = rng.randint(20, 2_500)
        thinking = "pro" in model
        thoughts = rng.randint(50, 4_000) if thinking and rng.random() < 0.85 else (
            rng.randint(1, 600) if rng.random() < 0.3 else 0)
        tool = rng.randint(100, 3_000) if rng.random() < 0.15 else 0
        self.context += output
        if self.context > 400_000:  # chat compression
            self.context = rng.randint(20_000, 60_000)
        return {"input": prompt, "output": output, "cached": cached, "thoughts": thoughts, "tool": tool,
                "total": prompt + output + thoughts + tool}

    def file_name(self) -> str:
        if self.parent:
            return f"{self.session_id}.jsonl"
        return f"session-{self.start:%Y-%m-%dT%H-%M}-{self.session_id[:8]}.{'json' if self.legacy else 'jsonl'}"

    def path(self, root: Path) -> Path:
        chats = root / self.project_hash / "chats"
        return chats / self.parent / self.file_name() if self.parent else chats / self.file_name()

    def write(self, root: Path) -> Path:
        path = self.path(root)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.legacy:
            record = {k: v for k, v in self.metadata.items() if k != "kind"}
            record |= {"lastUpdated": _iso(self.now), "messages": list(self.messages.values())}
            path.write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")
        else:
            _write_lines(path, [json.dumps(record, ensure_ascii=False) for record in self.records])
        _set_mtime(path, self.now)
        return path


def generate_gemini(
    root: Path,
    *,
    seed: int = 1,
    days: float = 10,
    sessions: int = 12,
    end: datetime | None = None,
    turns_per_session: int = 5,
    events_total: int | None = None,
    legacy_share: float = 0.35,
    resumed_legacy: bool = True,
) -> AgentTruth:
    """Write a Gemini CLI ``tmp/`` folder (``<sha256(cwd)>/chats/session-*.json|.jsonl``) and its truth.

    Sessions in the older part of the period are legacy ``.json`` files (about ``legacy_share`` of all),
    later ones ``.jsonl`` records as ChatRecordingService appends them; sub-agent chats live in
    ``chats/<parent session id>/<id>.jsonl``; each project folder also holds a ``logs.json`` (a list,
    no usage). Traps, counted in ``stats``: a response re-appended under the same id (first without
    tokens, then with them, then with its tool calls), ``$set`` records (``lastUpdated``, and whole
    conversations under ``messages``), ``$rewindTo``, responses that never got tokens, non-zero ``cached``,
    ``thoughts`` and ``tool`` counts. With ``resumed_legacy`` one legacy chat is resumed: like the CLI, a
    ``.jsonl`` next to the ``.json`` repeats its messages and continues, and ccusage counts the repeated
    messages again (once per file). ``events_total`` sizes the data set in responses instead of ``sessions``.

    ccusage 20.0.24 counts (``gemini_truth``): one event per ``type:"gemini"`` record with non-zero
    tokens; in a ``.jsonl`` file a later record with the same id replaces the earlier one; ``$set`` and
    ``$rewindTo`` records are ignored. ``input`` = input - cached + tool (when total = input + output +
    thoughts + tool), ``cache_read`` = cached, ``output`` = output, ``reasoning`` = thoughts (outside
    ``output``, only inside ``total``), ``total`` = the recorded total. The session id is the recorded
    ``sessionId``.
    """
    rng = random.Random(seed)
    end = _end(end)
    if events_total is not None:
        sessions = max(3, round(events_total / (turns_per_session * 2.6)))
    starts = _starts(rng, end, days, sessions)
    legacy_until = starts[max(0, round(sessions * legacy_share) - 1)] if legacy_share > 0 else None
    chats: list[_GeminiChat] = []

    def spawn(parent: _GeminiChat) -> None:
        child = _GeminiChat(rng, parent.now, cwd=parent.cwd, legacy=False, parent=parent.session_id)
        child.deadline = parent.deadline
        for _ in range(rng.randint(1, 2)):
            child.turn("gemini-2.5-flash", rng.randint(1, 3))
        parent.children.append(child)

    for start in starts:
        legacy = legacy_until is not None and start <= legacy_until
        chat = _GeminiChat(rng, start, cwd=rng.choice(_PROJECT_DIRS), legacy=legacy)
        showcase = not legacy and not any(not c.legacy for c in chats)
        _gemini_turns(chat, end, turns_per_session, spawn=None if legacy else spawn, showcase=showcase)
        chats.append(chat)
    legacy_chats = [chat for chat in chats if chat.legacy and chat.messages]
    if resumed_legacy and legacy_chats:
        chats.append(_resume_legacy(rng, legacy_chats[0], end, turns_per_session))
    for chat in chats:
        for written in (chat, *chat.children):
            written.write(root)
        logs = root / chat.project_hash / "logs.json"
        entries = json.loads(logs.read_text()) if logs.exists() else []
        entries.append({"sessionId": chat.session_id, "messageId": 0, "type": "user", "message": "hi",
                        "timestamp": _iso(chat.start)})
        logs.write_text(json.dumps(entries, indent=2), encoding="utf-8")
    return gemini_truth(root)


def _gemini_turns(
    chat: _GeminiChat,
    end: datetime,
    turns: int,
    *,
    spawn: Callable[[_GeminiChat], None] | None,
    showcase: bool = False,
    margin: timedelta = _MARGIN,
) -> None:
    """Turns until ``end - margin``, none past ``end``; a ``showcase`` chat surely syncs, rewinds and
    spawns a sub-agent."""
    rng = chat.rng
    chat.deadline = end
    count = max(1, round(turns * rng.uniform(0.5, 1.5)))
    for number in range(max(count, 3) if showcase else count):
        if chat.now > end - margin:
            break
        model = chat.model if chat.model and rng.random() > 0.2 else str(_pick(rng, GEMINI_MODELS))
        once = None if chat.children else spawn
        if not showcase:
            chat.turn(model, rng.randint(1, 4), spawn=once)
            continue
        chat.turn(model, rng.randint(2, 4), spawn=once, spawn_chance=1.0, rewind=number == 2, sync=number == 0)


def _resume_legacy(rng: random.Random, legacy: _GeminiChat, end: datetime, turns: int) -> _GeminiChat:
    """``gemini --resume`` of a legacy .json chat: a .jsonl copy of it that continues (the .json stays)."""
    resumed = _GeminiChat(rng, legacy.now, cwd=legacy.cwd, legacy=False)
    resumed.session_id, resumed.start, resumed.context = legacy.session_id, legacy.start, legacy.context
    resumed.metadata = {k: v for k, v in legacy.metadata.items() if k != "kind"} | {"lastUpdated": _iso(legacy.now)}
    resumed.records = [dict(resumed.metadata)]
    for message in legacy.messages.values():
        resumed._push(copy.deepcopy(message))
    resumed._append({"$set": {"sessionId": legacy.session_id}})
    resumed.model = legacy.model
    resumed.now = max(legacy.now, min(legacy.now + timedelta(hours=rng.uniform(2, 30)), end - timedelta(hours=1)))
    _gemini_turns(resumed, end, max(1, turns // 2), spawn=None)
    return resumed


def append_gemini_activity(
    root: Path, *, start: datetime, minutes: int = 60, turns: int = 4, seed: int = 2
) -> AgentTruth:
    """Continue the newest ``.jsonl`` main chat and start a new one, from ``start`` for ``minutes``."""
    rng = random.Random(seed)
    start, stop = _ms(_utc(start)), _utc(start) + timedelta(minutes=minutes)
    mains = [p for p in _files(root, (".jsonl",)) if p.name.startswith("session-")]
    if mains:
        newest = max(mains, key=lambda path: path.stat().st_mtime)
        chat = _GeminiChat(rng, start, cwd="/", legacy=False)
        records = [json.loads(raw) for raw in newest.read_text(encoding="utf-8").splitlines() if raw.strip()]
        chat.session_id = records[0]["sessionId"]
        chat.model = next((r["model"] for r in reversed(records) if isinstance(r.get("model"), str)), None)
        chat.messages = {r["id"]: r for r in records if isinstance(r.get("id"), str)}
        chat.records = []
        _gemini_turns(chat, stop, turns, spawn=None, margin=_append_margin(minutes))
        if chat.records:
            _write_lines(newest, [json.dumps(record, ensure_ascii=False) for record in chat.records], append=True)
            _set_mtime(newest, chat.now)
    fresh = _GeminiChat(rng, start + timedelta(seconds=30), cwd=rng.choice(_PROJECT_DIRS), legacy=False)
    _gemini_turns(fresh, stop, turns, spawn=None, margin=_append_margin(minutes))
    fresh.write(root)
    return gemini_truth(root)


def gemini_truth(root: Path) -> AgentTruth:
    """Apply the ccusage 20.0.24 Gemini CLI rules (see ``generate_gemini``) to every file under ``root``."""
    names = ("files", "json_files", "jsonl_files", "subagent_files", "records", "gemini_records", "reappended",
             "set_records", "set_messages", "rewinds", "no_tokens", "with_cached", "with_thoughts", "with_tool",
             "repeated_in_resumed")
    stats = dict.fromkeys(names, 0)
    naive = Usage()
    events: list[Event] = []
    seen_ids: dict[tuple[str, str], str] = {}
    for path in _files(root, (".json", ".jsonl")):
        stats["files"] += 1
        if path.suffix == ".jsonl":
            stats["jsonl_files"] += 1
            stats["subagent_files"] += not path.name.startswith("session-")
            found = _read_gemini_jsonl(path, stats, naive)
        else:
            stats["json_files"] += 1
            found = _read_gemini_json(path, stats, naive)
        for event in found:
            message = (event.session, event.key[1])
            stats["repeated_in_resumed"] += seen_ids.get(message, str(path)) != str(path)
            seen_ids[message] = str(path)
        events += found
    return AgentTruth("gemini", root, {"daily": events, "session": events}, stats, naive)


def _read_gemini_jsonl(path: Path, stats: dict[str, int], naive: Usage) -> list[Event]:
    session = path.stem
    model: str | None = None
    events: list[Event] = []
    index_of: dict[str, int] = {}
    fallback = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    for raw in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        stats["records"] += 1
        if "$set" in record:
            stats["set_records"] += 1
            stats["set_messages"] += "messages" in (record["$set"] or {})
        stats["rewinds"] += "$rewindTo" in record
        session = _non_empty(record.get("sessionId")) or _non_empty(record.get("session_id")) or session
        model = _non_empty(record.get("model")) or model
        if record.get("type") != "gemini":
            continue
        stats["gemini_records"] += 1
        _gemini_naive(record, naive)
        event = _gemini_event(record, model, session, fallback, path, stats)
        if event is None:
            continue
        message_id = _non_empty(record.get("id"))
        if message_id and message_id in index_of:
            events[index_of[message_id]] = event
            stats["reappended"] += 1
        else:
            if message_id:
                index_of[message_id] = len(events)
            events.append(event)
    return events


def _read_gemini_json(path: Path, stats: dict[str, int], naive: Usage) -> list[Event]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return []
    if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
        return []
    session = _non_empty(record.get("sessionId")) or _non_empty(record.get("session_id")) or path.stem
    started = record.get("startTime") or record.get("lastUpdated")
    fallback = _parse_iso(started) if isinstance(started, str) else datetime.fromtimestamp(path.stat().st_mtime, UTC)
    events = []
    for message in record["messages"]:
        if isinstance(message, dict) and message.get("type") == "gemini":
            stats["records"] += 1
            stats["gemini_records"] += 1
            _gemini_naive(message, naive)
            event = _gemini_event(message, None, session, fallback, path, stats)
            if event is not None:
                events.append(event)
    return events


def _gemini_event(
    record: dict, model_hint: str | None, session: str, fallback: datetime, path: Path, stats: dict[str, int]
) -> Event | None:
    tokens = record.get("tokens")
    if not isinstance(tokens, dict):
        stats["no_tokens"] += 1
        return None
    model = _non_empty(record.get("model")) or model_hint
    if not model:
        return None

    def count(*keys: str) -> int:
        for key in keys:
            value = tokens.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return max(0, int(value))
        return 0

    prompt, output = count("input", "prompt", "input_tokens", "prompt_tokens"), count(
        "output", "candidates", "output_tokens", "candidates_tokens")
    cached, thoughts = count("cached", "cached_tokens"), count(
        "thoughts", "reasoning", "thoughts_tokens", "reasoning_tokens")
    tool = count("tool", "tool_tokens")
    inclusive = prompt + output + thoughts + tool
    recorded_total = tokens.get("total", tokens.get("total_tokens"))
    recorded_total = int(recorded_total) if isinstance(recorded_total, int | float) else None
    uncached = prompt - min(prompt, cached) if cached and recorded_total == inclusive != inclusive + cached else prompt
    usage = Usage(input=uncached + tool, output=output, cache_read=cached)
    total = recorded_total if recorded_total is not None else usage.input + output + cached + thoughts
    extra = thoughts
    missing = total - (usage.input + usage.output + usage.cache_read + extra)
    if missing > 0:
        if usage.output == 0:
            usage.output = missing
        else:
            extra += missing
    if not (usage.input or usage.output or usage.cache_read or extra):
        stats["no_tokens"] += 1
        return None
    usage.total = total
    usage.reasoning = max(0, total - (usage.input + usage.output + usage.cache_read))
    stats["with_cached"] += cached > 0
    stats["with_thoughts"] += thoughts > 0
    stats["with_tool"] += tool > 0
    stamp = record.get("timestamp") or record.get("created_at")
    when = _parse_iso(stamp) if isinstance(stamp, str) else fallback
    key = (str(path), _non_empty(record.get("id")))
    return Event(_ms(when), model, session, usage, str(path), key)


def _gemini_naive(record: dict, naive: Usage) -> None:
    """A reader counting every response record with tokens as it is."""
    tokens = record.get("tokens")
    if isinstance(tokens, dict):
        naive.add(Usage(input=tokens.get("input", 0), output=tokens.get("output", 0),
                        cache_read=tokens.get("cached", 0), reasoning=tokens.get("thoughts", 0),
                        total=tokens.get("total", 0)))


def _non_empty(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


# --------------------------------------------------------------------------------------
# OpenCode
# --------------------------------------------------------------------------------------

#: OpenCode's tables, as its drizzle migrations create them (the columns ccusage and this module use, and
#: the ones that carry NOT NULL constraints).
_OPENCODE_SCHEMA = """
CREATE TABLE `project` (`id` text PRIMARY KEY, `worktree` text NOT NULL, `vcs` text, `name` text,
    `time_created` integer NOT NULL, `time_updated` integer NOT NULL, `time_initialized` integer,
    `sandboxes` text NOT NULL);
CREATE TABLE `session` (`id` text PRIMARY KEY, `project_id` text NOT NULL, `parent_id` text,
    `slug` text NOT NULL, `directory` text NOT NULL, `title` text NOT NULL, `version` text NOT NULL,
    `share_url` text, `summary_additions` integer, `summary_deletions` integer, `summary_files` integer,
    `summary_diffs` text, `revert` text, `permission` text, `time_created` integer NOT NULL,
    `time_updated` integer NOT NULL, `time_compacting` integer, `time_archived` integer,
    CONSTRAINT `fk_session_project_id_project_id_fk` FOREIGN KEY (`project_id`) REFERENCES `project`(`id`)
    ON DELETE CASCADE);
CREATE TABLE `message` (`id` text PRIMARY KEY, `session_id` text NOT NULL, `time_created` integer NOT NULL,
    `time_updated` integer NOT NULL, `data` text NOT NULL,
    CONSTRAINT `fk_message_session_id_session_id_fk` FOREIGN KEY (`session_id`) REFERENCES `session`(`id`)
    ON DELETE CASCADE);
CREATE TABLE `part` (`id` text PRIMARY KEY, `message_id` text NOT NULL, `session_id` text NOT NULL,
    `time_created` integer NOT NULL, `time_updated` integer NOT NULL, `data` text NOT NULL,
    CONSTRAINT `fk_part_message_id_message_id_fk` FOREIGN KEY (`message_id`) REFERENCES `message`(`id`)
    ON DELETE CASCADE);
CREATE INDEX `message_session_time_created_id_idx` ON `message` (`session_id`,`time_created`,`id`);
CREATE INDEX `part_message_id_id_idx` ON `part` (`message_id`,`id`);
CREATE INDEX `part_session_idx` ON `part` (`session_id`);
CREATE INDEX `session_project_idx` ON `session` (`project_id`);
CREATE INDEX `session_parent_idx` ON `session` (`parent_id`);
"""
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


class _OpenCodeSession(_Timeline):
    """One OpenCode session: its info, messages (full info incl. id and sessionID) and parts."""

    def __init__(self, rng: random.Random, start: datetime, *, cwd: str, parent: _OpenCodeSession | None = None):
        self.rng, self.now, self.start, self.cwd = rng, start, start, cwd
        self.id = self._id("ses", start)
        self.project_id = hashlib.sha1(cwd.encode()).hexdigest()
        self.parent = parent
        self.messages: list[dict] = []
        self.parts: list[dict] = []
        self.provider_model: tuple[str, str] | None = None
        self.context = rng.randint(12_000, 20_000)
        self.legacy = False
        self.migrated = True
        self.title = _text(rng, 10, 40).strip()
        self.children: list[_OpenCodeSession] = []

    def _id(self, prefix: str, at: datetime) -> str:
        """OpenCode's ascending ids: 12 hex digits of time (and a sub-millisecond part), then 14 base62."""
        head = (int(at.timestamp() * 1000) * 0x1000 + self.rng.getrandbits(12)) & 0xFFFF_FFFF_FFFF
        return f"{prefix}_{head:012x}" + "".join(self.rng.choice(_BASE62) for _ in range(14))

    def _tick(self, low: float, high: float) -> int:
        return int(self._advance(low, high).timestamp() * 1000)

    def turn(
        self, provider_model: tuple[str, str], steps: int, *, spawn: Callable | None = None, spawn_chance: float = 0.2
    ) -> None:
        """A user message and ``steps`` assistant messages (one per model call)."""
        rng = self.rng
        self._pause(bool(self.messages))
        created = int(self.now.timestamp() * 1000)
        provider, model = provider_model
        self.provider_model = provider_model
        user_id = self._id("msg", self.now)
        self.messages.append({"id": user_id, "sessionID": self.id, "role": "user", "time": {"created": created},
                              "agent": "build", "model": {"providerID": provider, "modelID": model}})
        self._part(user_id, {"type": "text", "text": _text(rng, 10, 300)})
        for step in range(steps):
            self._assistant(user_id, provider, model, last=step == steps - 1)
            if spawn and step < steps - 1 and rng.random() < spawn_chance:
                spawn(self)
                spawn = None

    def _assistant(self, parent_id: str, provider: str, model: str, *, last: bool) -> None:
        rng = self.rng
        created = self._tick(1, 5)
        completed = self._tick(2, 40)
        tokens = {"input": 0, "output": 0, "reasoning": 0, "cache": {"read": 0, "write": 0}}
        aborted = rng.random() < 0.03
        if not aborted:
            tokens = self._tokens(provider, model)
        message_id = self._id("msg", self.now)
        info: dict = {"id": message_id, "sessionID": self.id, "role": "assistant",
                      "time": {"created": created, "completed": completed}, "parentID": parent_id,
                      "modelID": model, "providerID": provider, "mode": "build", "agent": "build",
                      "path": {"cwd": self.cwd, "root": self.cwd}, "cost": self._cost(model, tokens),
                      "tokens": tokens}
        if aborted:
            info["error"] = {"name": "MessageAbortedError", "data": {"message": "The operation was aborted."}}
            info["time"].pop("completed")
        else:
            info["finish"] = "stop" if last else "tool-calls"
        self.messages.append(info)
        self._part(message_id, {"type": "step-start"})
        self._part(message_id, {"type": "text", "text": _text(rng, 20, 300)})
        if not aborted:  # step-finish repeats the usage: a reader summing parts counts it twice
            self._part(message_id, {"type": "step-finish", "reason": info["finish"], "cost": info["cost"],
                                    "tokens": copy.deepcopy(tokens)})

    def _part(self, message_id: str, data: dict) -> None:
        stamp = int(self.now.timestamp() * 1000)
        self.parts.append({"id": self._id("prt", self.now), "messageID": message_id, "sessionID": self.id,
                           "time": stamp, **data})

    def _tokens(self, provider: str, model: str) -> dict:
        """Usage as OpenCode stores it: input excludes cache reads and writes; reasoning is separate."""
        rng = self.rng
        self.context += rng.randint(300, 6_000)
        output = rng.randint(20, 2_500)
        reasoning = 0
        cache_read = cache_write = 0
        if provider == "anthropic":
            cache_write = rng.randint(0, 6_000)
            cache_read = self.context - cache_write
            prompt = rng.randint(1, 40)
        elif provider in ("openai", "google"):
            cache_read = int(self.context * rng.uniform(0.5, 0.9)) if rng.random() < 0.8 else 0
            prompt = self.context - cache_read
            reasoning = rng.randint(0, 3_000) if rng.random() < 0.8 else 0
        else:
            prompt = self.context
        self.context += output
        if self.context > 160_000:  # compaction
            self.context = rng.randint(20_000, 40_000)
        tokens: dict = {"input": prompt, "output": output, "reasoning": reasoning,
                        "cache": {"read": cache_read, "write": cache_write}}
        if rng.random() < 0.5:  # newer OpenCode versions also store the total
            tokens = {"total": prompt + output + reasoning + cache_read + cache_write, **tokens}
        return tokens

    @staticmethod
    def _cost(model: str, tokens: dict) -> float:
        prices = _OPENCODE_PRICES.get(model)
        if prices is None:
            return 0
        counts = (tokens["input"], tokens["output"] + tokens["reasoning"], tokens["cache"]["read"],
                  tokens["cache"]["write"])
        return round(sum(count * price for count, price in zip(counts, prices, strict=True)) / 1e6, 8)

    def info(self) -> dict:
        created = int(self.start.timestamp() * 1000)
        updated = int(self.now.timestamp() * 1000)
        info = {"id": self.id, "slug": self.id[-8:].lower(), "version": "1.0.134", "projectID": self.project_id,
                "directory": self.cwd, "title": self.title,
                "time": {"created": created, "updated": updated}}
        if self.parent:
            info["parentID"] = self.parent.id
        return info


def generate_opencode(
    root: Path,
    *,
    seed: int = 1,
    days: float = 10,
    sessions: int = 12,
    end: datetime | None = None,
    turns_per_session: int = 5,
    events_total: int | None = None,
    migrated_at: float = 0.5,
    unmigrated_share: float = 0.25,
) -> AgentTruth:
    """Write an OpenCode data folder (``opencode.db`` and legacy ``storage/``) and its truth.

    Sessions that start in the first ``migrated_at`` of the period (and always the first two) were
    written by the JSON-storage OpenCode (``storage/message/<session>/<message>.json``, plus session and
    part files); the SQLite migration copied most of them into ``opencode.db`` and left the files, so
    their messages are in both (the second session and about ``unmigrated_share`` of the others stay
    JSON-only). Later sessions are in the database only (tables project,
    session, message, part; ``message.data`` is the info without id and sessionID). Traps, counted in
    ``stats``: messages in both stores, ``tokens.reasoning``, a stored ``cost`` > 0 (anthropic, openai
    and google; 0 for github-copilot and the free opencode models, which ccusage prices itself, or cannot:
    big-pickle), aborted messages with zero tokens, step-finish parts that repeat the usage, sub-sessions
    (``parent_id``). ``events_total`` sizes the data set in assistant messages instead of ``sessions``.

    ccusage 20.0.24 counts (``opencode_truth``): one event per message with a ``tokens`` object, non-zero
    counts and a modelID and providerID (assistant messages); database rows first, a legacy file only when
    its id is not in the database. ``input`` = tokens.input, ``output`` = tokens.output,
    ``cache_read``/``cache_creation`` = tokens.cache.read/write, ``reasoning`` = tokens.reasoning (outside
    ``output``, inside ``total``), ``total`` = the five summed (a recorded ``tokens.total`` above that sum
    adds the difference, to output when output is 0). The session id is the session's id; a stored cost
    > 0 is the message's cost.
    """
    rng = random.Random(seed)
    end = _end(end)
    if events_total is not None:
        sessions = max(3, round(events_total / (turns_per_session * 2.7)))
    starts = _starts(rng, end, days, sessions)
    migration = end - timedelta(days=days) + timedelta(days=days) * migrated_at
    made: list[_OpenCodeSession] = []

    def spawn(parent: _OpenCodeSession) -> None:
        child = _OpenCodeSession(rng, parent.now, cwd=parent.cwd, parent=parent)
        child.legacy, child.migrated, child.deadline = parent.legacy, parent.migrated, parent.deadline
        for _ in range(rng.randint(1, 2)):
            child.turn(("anthropic", "claude-haiku-4-5"), rng.randint(1, 3))
        parent.children.append(child)

    for index, start in enumerate(starts):
        session = _OpenCodeSession(rng, start, cwd=rng.choice(_PROJECT_DIRS))
        session.legacy = start < migration or index < 2  # the first two always predate the database
        session.migrated = index != 1 and (not session.legacy or index == 0 or rng.random() >= unmigrated_share)
        stop = migration if session.legacy else end
        _opencode_turns(session, stop, turns_per_session, spawn=spawn, showcase=index == 0)
        made.append(session)
    everything = [s for session in made for s in (session, *session.children)]
    _write_opencode(root, everything)
    return opencode_truth(root)


def _opencode_turns(
    session: _OpenCodeSession,
    end: datetime,
    turns: int,
    *,
    spawn: Callable | None,
    showcase: bool = False,
    margin: timedelta = _MARGIN,
) -> None:
    """Turns until ``end - margin`` (at least one), none past ``end``; a ``showcase`` session surely
    starts a sub-session."""
    rng = session.rng
    session.deadline = end
    for _ in range(max(1, round(turns * rng.uniform(0.5, 1.5)))):
        if session.now > end - margin and session.messages:
            break
        model = session.provider_model if session.provider_model and rng.random() > 0.15 else _pick(
            rng, OPENCODE_MODELS)
        steps = rng.randint(2, 4) if showcase else rng.randint(1, 4)
        session.turn(model, steps, spawn=None if session.children else spawn, spawn_chance=1.0 if showcase else 0.2)


def _write_opencode(root: Path, sessions: list[_OpenCodeSession]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    database = root / "opencode.db"
    fresh = not database.exists()
    connection = sqlite3.connect(database)
    try:
        if fresh:
            connection.executescript(_OPENCODE_SCHEMA)
        for session in sorted(sessions, key=lambda s: s.start):
            if session.legacy:
                _write_opencode_files(root, session)
            if session.migrated:
                _insert_opencode(connection, session)
        connection.commit()
    finally:
        connection.close()
    latest = max((s.now for s in sessions if s.migrated), default=None)
    if latest:
        _set_mtime(database, latest)


def _insert_opencode(connection: sqlite3.Connection, session: _OpenCodeSession) -> None:
    info = session.info()
    created, updated = info["time"]["created"], info["time"]["updated"]
    connection.execute(
        "INSERT OR IGNORE INTO project (id, worktree, vcs, name, time_created, time_updated, sandboxes)"
        " VALUES (?, ?, 'git', NULL, ?, ?, '[]')",
        (session.project_id, session.cwd, created, created),
    )
    connection.execute(
        "INSERT INTO session (id, project_id, parent_id, slug, directory, title, version, time_created,"
        " time_updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(id) DO UPDATE SET time_updated = excluded.time_updated",
        (session.id, session.project_id, info.get("parentID"), info["slug"], session.cwd, info["title"],
         info["version"], created, updated),
    )
    for message in session.messages:
        data = {k: v for k, v in message.items() if k not in ("id", "sessionID")}
        stamp = message["time"]["created"]
        finished = message["time"].get("completed", stamp)
        connection.execute(
            "INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES (?, ?, ?, ?, ?)",
            (message["id"], session.id, stamp, finished, _compact(data)))
    for part in session.parts:
        data = {k: v for k, v in part.items() if k not in ("id", "messageID", "sessionID", "time")}
        connection.execute("INSERT INTO part (id, message_id, session_id, time_created, time_updated, data)"
                           " VALUES (?, ?, ?, ?, ?, ?)",
                           (part["id"], part["messageID"], session.id, part["time"], part["time"], _compact(data)))


def _write_opencode_files(root: Path, session: _OpenCodeSession) -> None:
    """JSON storage as OpenCode wrote it before the database: session, message and part files."""
    storage = root / "storage"
    info = session.info()
    session_file = storage / "session" / session.project_id / f"{session.id}.json"
    session_file.parent.mkdir(parents=True, exist_ok=True)
    session_file.write_text(json.dumps(info, indent=2, ensure_ascii=False), encoding="utf-8")
    _set_mtime(session_file, session.now)
    for message in session.messages:
        path = storage / "message" / session.id / f"{message['id']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(message, indent=2, ensure_ascii=False), encoding="utf-8")
        stamp = message["time"].get("completed", message["time"]["created"])
        _set_mtime(path, datetime.fromtimestamp(stamp / 1000, UTC))
    for part in session.parts:
        path = storage / "part" / part["messageID"] / f"{part['id']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {k: v for k, v in part.items() if k != "time"}
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        _set_mtime(path, datetime.fromtimestamp(part["time"] / 1000, UTC))


def append_opencode_activity(
    root: Path, *, start: datetime, minutes: int = 60, turns: int = 4, seed: int = 2
) -> AgentTruth:
    """Add database messages to the most recently updated session and to a new one, from ``start`` on."""
    rng = random.Random(seed)
    start, stop = _ms(_utc(start)), _utc(start) + timedelta(minutes=minutes)
    sessions = []
    connection = sqlite3.connect(root / "opencode.db")
    try:
        row = connection.execute(
            "SELECT s.id, s.directory, s.time_created, m.data FROM session s JOIN message m ON m.session_id = s.id"
            " ORDER BY m.time_created DESC LIMIT 1").fetchone()
    finally:
        connection.close()
    if row:
        continued = _OpenCodeSession(rng, start, cwd=row[1])
        continued.id = row[0]
        continued.start = datetime.fromtimestamp(row[2] / 1000, UTC)
        data = json.loads(row[3])
        if data.get("providerID") and data.get("modelID"):
            continued.provider_model = (data["providerID"], data["modelID"])
        sessions.append(continued)
    sessions.append(_OpenCodeSession(rng, start + timedelta(seconds=30), cwd=rng.choice(_PROJECT_DIRS)))
    for session in sessions:
        _opencode_turns(session, stop, turns, spawn=None, margin=_append_margin(minutes))
    _write_opencode(root, sessions)
    return opencode_truth(root)


def opencode_truth(root: Path) -> AgentTruth:
    """Apply the ccusage 20.0.24 OpenCode rules (see ``generate_opencode``) to ``root``."""
    names = ("db_rows", "db_events", "json_files", "json_in_db", "json_only", "user_messages", "empty_messages",
             "with_reasoning", "with_stored_cost", "with_recorded_total", "parts", "subsessions")
    stats = dict.fromkeys(names, 0)
    naive = Usage()
    events: list[Event] = []
    seen: set[Hashable] = set()
    database = root / "opencode.db"
    if database.is_file():
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            rows = connection.execute("SELECT id, session_id, data FROM message").fetchall()
            stats["parts"] = connection.execute("SELECT count(*) FROM part").fetchone()[0]
            stats["subsessions"] = connection.execute(
                "SELECT count(*) FROM session WHERE parent_id IS NOT NULL").fetchone()[0]
        finally:
            connection.close()
        for message_id, session_id, data in rows:
            stats["db_rows"] += 1
            event = _opencode_event(json.loads(data), message_id, session_id, "opencode.db", stats, naive)
            if event is not None and event.key not in seen:
                seen.add(event.key)
                stats["db_events"] += 1
                events.append(event)
    for path in _files(root / "storage" / "message", (".json",)):
        stats["json_files"] += 1
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        if not isinstance(value, dict):
            continue
        event = _opencode_event(value, None, None, str(path), stats, naive)
        if event is None:
            continue
        if event.key in seen:
            stats["json_in_db"] += 1
            continue
        seen.add(event.key)
        stats["json_only"] += 1
        events.append(event)
    return AgentTruth("opencode", root, {"daily": events, "session": events}, stats, naive)


def _opencode_event(
    value: dict, message_id: str | None, session_id: str | None, source: str, stats: dict[str, int], naive: Usage
) -> Event | None:
    if value.get("role") == "user":
        stats["user_messages"] += 1
    tokens = value.get("tokens")
    if not isinstance(tokens, dict):
        return None
    cache = tokens.get("cache") if isinstance(tokens.get("cache"), dict) else {}

    def count(holder: dict, key: str) -> int:
        number = holder.get(key)
        return max(0, int(number)) if isinstance(number, int | float) and not isinstance(number, bool) else 0

    usage = Usage(input=count(tokens, "input"), output=count(tokens, "output"), cache_creation=count(cache, "write"),
                  cache_read=count(cache, "read"))
    naive.add(Usage(usage.input, usage.output, usage.cache_creation, usage.cache_read, 0,
                    usage.input + usage.output + usage.cache_creation + usage.cache_read))
    extra = count(tokens, "reasoning")
    known = usage.input + usage.output + usage.cache_creation + usage.cache_read + extra
    missing = count(tokens, "total") - known
    if missing > 0:
        if usage.output == 0:
            usage.output = missing
        else:
            extra += missing
    if not (usage.input or usage.output or usage.cache_creation or usage.cache_read or extra):
        stats["empty_messages"] += 1
        return None
    model, provider = _non_empty(value.get("modelID")), _non_empty(value.get("providerID"))
    if not model or not provider:
        return None
    usage.reasoning = extra
    usage.total = usage.input + usage.output + usage.cache_creation + usage.cache_read + extra
    stats["with_reasoning"] += count(tokens, "reasoning") > 0
    stats["with_recorded_total"] += "total" in tokens
    cost = value.get("cost")
    stored = float(cost) if isinstance(cost, int | float) and cost > 0 else None
    stats["with_stored_cost"] += stored is not None
    created = (value.get("time") or {}).get("created")
    when = datetime.fromtimestamp((created if isinstance(created, int) else 0) / 1000, UTC)
    key = message_id or _non_empty(value.get("id")) or f"{source}#anonymous"
    session = session_id or _non_empty(value.get("sessionID")) or "unknown"
    return Event(_ms(when), model, session, usage, source, key, stored_cost=stored)


# --------------------------------------------------------------------------------------
# Retention
# --------------------------------------------------------------------------------------


def delete_older_than(root: Path, cutoff: datetime) -> list[Path]:
    """Delete Codex rollouts or Gemini chats whose mtime is before ``cutoff`` (a user's cleanup, or
    Gemini CLI's session retention); return the deleted files. OpenCode keeps one database: refused."""
    if (root / "opencode.db").exists():
        raise ValueError(f"{root}: OpenCode keeps its history in one database; nothing to delete by file age")
    limit = _utc(cutoff).timestamp()
    candidates = _files(root, (".jsonl",)) + [p for p in _files(root, (".json",)) if p.name.startswith("session-")]
    deleted = [path for path in candidates if path.stat().st_mtime < limit]
    for path in deleted:
        path.unlink()
        parent = path.parent
        while parent != root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    return deleted


# --------------------------------------------------------------------------------------
# A whole machine, and the recordings in tests/fixtures/agents
# --------------------------------------------------------------------------------------


def generate_machine(
    root: Path, *, seed: int = 1, days: float = 4, end: datetime | None = None, scale: int = 1
) -> dict[str, object]:
    """Claude Code transcripts (tests/transcripts.py) and the three agents under ``root/<agent>``.

    Returns each agent's truth (Claude's is a transcripts.GroundTruth). ``scale`` multiplies every
    agent's session count. Claude's folder always has ``projects/``: unified reports require it.
    """
    from transcripts import generate

    end = _end(end)
    sizes = {"days": days, "sessions": 5 * scale, "turns_per_session": 3, "end": end}
    return {  # one seed per agent, so that their random ids differ
        "claude": generate(root / "claude", seed=seed, days=days, sessions=4 * scale, lines_per_session=60, end=end),
        "codex": generate_codex(root / "codex", seed=4 * seed + 1, tz="Europe/Berlin", **sizes),
        "gemini": generate_gemini(root / "gemini", seed=4 * seed + 2, **sizes),
        "opencode": generate_opencode(root / "opencode", seed=4 * seed + 3, **sizes),
    }


def machine_env(root: Path) -> dict[str, str]:
    """The ccusage variables of a ``generate_machine`` tree (missing agent folders are created empty)."""
    (root / "claude" / "projects").mkdir(parents=True, exist_ok=True)
    for agent in ("codex", "gemini", "opencode"):
        (root / agent).mkdir(parents=True, exist_ok=True)
    return {variable: str(root / agent) for agent, variable in ENV_VARS.items()}


#: Recorded outputs in tests/fixtures/agents: file name -> ccusage arguments (after the binary).
RECORDINGS: dict[str, list[str]] = {
    "unified_daily_by_agent.json": ["daily", "--by-agent", "--json", "--offline", "--timezone", "UTC"],
    "unified_session_sections.json": ["session", "--sections", "daily,session", "--by-agent", "--json",
                                      "--offline", "--timezone", "UTC"],
    **{
        f"{agent}_{report}.json": [agent, report, "--json", "--offline", "--timezone", "UTC"]
        for agent in ("codex", "gemini", "opencode")
        for report in ("daily", "session")
    },
}
#: The data set the recordings were made from: generate_machine(<dir>, **RECORDING_DATASET).
RECORDING_DATASET: dict = {"seed": 10, "days": 3, "end": datetime(2026, 11, 21, 20, 7, tzinfo=UTC)}


def run_ccusage(binary: str, env: dict[str, str], home: Path, *args: str) -> dict:
    """Run ccusage with only the given agent variables, an empty HOME and TZ=UTC; parse its JSON."""
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "TZ": "UTC", "LOG_LEVEL": "0", **env}
    done = subprocess.run([binary, *args], env=environment, cwd=home, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"ccusage {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


def record(folder: Path, binary: str, work: Path) -> None:
    """Regenerate the recordings: the RECORDING_DATASET machine under ``work``, each RECORDINGS command."""
    generate_machine(work / "machine", **RECORDING_DATASET)
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = machine_env(work / "machine")
    for name, args in RECORDINGS.items():
        report = run_ccusage(binary, env, home, *args)
        (folder / name).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    import tempfile

    if len(sys.argv) != 3 or sys.argv[1] != "record":
        sys.exit("usage: python tests/agent_logs.py record tests/fixtures/agents  (CCUSAGE_BIN=<ccusage 20.0.24>)")
    default = Path.home() / ".cache/ccusage-import-tests/ccusage-20.0.24/node_modules/.bin/ccusage"
    with tempfile.TemporaryDirectory() as scratch:
        record(Path(sys.argv[2]), os.environ.get("CCUSAGE_BIN", str(default)), Path(scratch))
