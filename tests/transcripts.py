"""Synthetic Claude Code transcripts with an independently computed ccusage ground truth.

``generate()`` writes a Claude config dir (``<root>/projects/<project>/<session>.jsonl``
plus sub-agent files) full of Claude Code 2.x style JSONL lines, including the awkward
cases ccusage 20 has to handle: streamed duplicate copies, resumed sessions that replay
history, sub-agents, API-error lines and junk lines that must be ignored.

``ground_truth()`` re-reads whatever is on disk and applies the ccusage 20.0.24 rules
itself (shared/reference/ccusage-v20.md, sections 3-7): byte prefilter, null rejection,
strict parsing, validity checks, de-duplication and project/session naming. It never runs
ccusage, so tests can compare ccusage, or an importer, against numbers from elsewhere.

Typical use::

    truth = generate(tmp_path, seed=3, days=10, sessions=20)
    truth.by_day()            # {"2026-11-03": Totals(input=..., ...), ...}
    append_activity(tmp_path, start=now - timedelta(hours=1))
    truth = ground_truth(tmp_path)   # recompute after changing files

Only the standard library is used.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = [
    "DEFAULT_PROJECTS",
    "HOSTILE_PROJECTS",
    "JUNK_KINDS",
    "MODELS",
    "Block",
    "Entry",
    "GroundTruth",
    "Loader",
    "Totals",
    "append_activity",
    "delete_older_than",
    "generate",
    "ground_truth",
    "iter_lines",
]

# --------------------------------------------------------------------------------------
# What the generator writes
# --------------------------------------------------------------------------------------

#: Models priced by ccusage 20, with their weight as a session's main model.
MODELS: dict[str, int] = {
    "claude-sonnet-4-5-20250929": 40,
    "claude-opus-4-5-20251101": 15,
    "claude-haiku-4-5-20251001": 12,
    "claude-sonnet-4-20250514": 12,
    "claude-opus-4-1-20250805": 11,
    "claude-3-5-haiku-20241022": 10,
}
#: Cheap models Claude Code uses for side requests and sub-agents.
SIDE_MODELS = ("claude-haiku-4-5-20251001", "claude-3-5-haiku-20241022")

#: Default project directories (encoded cwd) and the cwd each one stands for.
DEFAULT_PROJECTS: dict[str, str] = {
    "-Users-alice-src-api": "/Users/alice/src/api",
    "-Users-alice-src-api--worktrees-feature-auth": "/Users/alice/src/api/.worktrees/feature_auth",
    "-Users-alice-src-web-frontend": "/Users/alice/src/web-frontend",
    "-home-bob-work-infra-terraform": "/home/bob/work/infra/terraform",
    "-home-bob-work-ml-pipeline": "/home/bob/work/ml_pipeline",
    "-Users-carol-code-mobile-app": "/Users/carol/code/mobile.app",
}

#: Directory names that stress quoting and encoding in an importer.
HOSTILE_PROJECTS: list[str] = [
    'it\'s a "quoted" dir',
    "ünïcødé proj",
    "semi;colon",
    "back\\slash, comma",
    "emoji 🚀 `tick` $(x)",
    "-Users-alice-src-api",
]

#: Lines ccusage 20 must ignore; every session gets one (round-robin over sessions).
JUNK_KINDS = (
    "not_json",  # a truncated line that still contains "usage":{
    "spaced_usage",  # "usage": { with a space: fails the byte prefilter
    "null_request_id",  # "requestId":null: null rejection
    "float_tokens",  # input_tokens 1.0: not an integer
    "negative_tokens",  # output_tokens -5
    "unknown_version",  # "version":"unknown": not digits.digits.digit
)

VERSIONS = ("2.0.31", "2.0.28", "2.0.37", "2.0.14")
TOOLS = ("Bash", "Read", "Edit", "Grep", "Glob", "Write")
RESUME_RATE = 0.3  # chance that a session resumes the previous one of its project
_OFFSET_ZONE = ZoneInfo("Asia/Tokyo")  # for the few "+09:00" timestamps

_PARAGRAPH = (
    "The function returns a list of parsed rows and the caller retries on timeout. "
    "Let me check the test output first, then update the fixture and rerun pytest. "
    "naïve café résumé 日本語 ✓ — refactor the query, index the schema, fix the migration. "
    "ClickHouse ReplacingMergeTree ORDER BY (date, project); insert in batches and upsert. "
)
_LOREM = _PARAGRAPH * 80  # text is sliced from here: cheap and deterministic


# --------------------------------------------------------------------------------------
# Public API: writing
# --------------------------------------------------------------------------------------


def generate(
    root: Path,
    *,
    seed: int = 1,
    days: int = 20,
    sessions: int = 30,
    projects: list[str] | None = None,
    end: datetime | None = None,
    lines_per_session: int = 40,
    lines_total: int | None = None,
    sidechain_replays: bool = True,
) -> GroundTruth:
    """Write synthetic transcripts under ``root`` and return their ground truth.

    Sessions start at random times in the ``days`` days before ``end`` (default: now,
    UTC, floored to the minute) and never run past ``end``. Session lengths vary around
    ``lines_per_session`` (sub-agent and replayed lines included). ``lines_total``, if
    given, overrides ``sessions`` so that about that many lines are written.
    ``sidechain_replays=False`` leaves out the one case where ccusage's reports disagree
    (see ``Loader``), so that daily and session totals are equal.
    """
    _check_root(root)
    rng = random.Random(seed)
    end = _utc(end) if end else datetime.now(UTC).replace(second=0, microsecond=0)
    names = list(projects) if projects else list(DEFAULT_PROJECTS)
    if lines_total is not None:
        sessions = max(1, round(lines_total / lines_per_session))
    starts = sorted(end - timedelta(days=days) * rng.random() for _ in range(sessions))
    # Per project: end time and last lines of its latest session, for resumes.
    latest: dict[str, tuple[datetime, list[str]]] = {}
    for index, start in enumerate(map(_ms, starts)):
        project = rng.choice(names)
        replay = None
        previous = latest.get(project)
        if previous and previous[0] < start and rng.random() < RESUME_RATE:
            replay = previous[1][-rng.randint(3, 12) :]
        clock = _Clock(rng, start, pace=20.0, pauses=True)
        transcripts = _build_session(
            rng,
            clock,
            session_id=_uuid(rng),
            cwd=_cwd_for(project),
            n_lines=max(6, round(lines_per_session * rng.uniform(0.5, 1.5))),
            junk=JUNK_KINDS[index % len(JUNK_KINDS)],
            replay=replay,
            sidechain_replays=sidechain_replays,
        )
        _fit(transcripts, start, end)
        main_lines = _write_session(root, project, transcripts, append=False)
        latest[project] = (transcripts[0].lines[-1].ts, main_lines[-12:])
    return ground_truth(root)


def append_activity(
    root: Path,
    *,
    start: datetime,
    minutes: int = 60,
    lines: int = 300,
    seed: int = 2,
    projects: list[str] | None = None,
) -> GroundTruth:
    """Simulate ``minutes`` more minutes of activity from ``start`` and return the new truth.

    Continues the most recently modified main session file (appending to it) and starts
    one new session, splitting about ``lines`` lines between them. New timestamps run from
    ``start`` to ``start + minutes``. The returned ground truth covers the whole tree.
    """
    _check_root(root)
    rng = random.Random(seed)
    start = _ms(_utc(start))
    end = start + timedelta(minutes=minutes)
    mains = [path for path in _transcript_files(root) if _layout(root, path)[2] == "main"]
    names = list(projects) if projects else sorted({_layout(root, p)[0] for p in mains})
    jobs: list[tuple[str, str, str, Path | None]] = []  # project, session id, cwd, file
    if mains:
        newest = max(mains, key=lambda path: path.stat().st_mtime)
        project = _layout(root, newest)[0]
        jobs.append((project, newest.stem, _cwd_of(newest, project), newest))
    project = rng.choice(names or list(DEFAULT_PROJECTS))
    jobs.append((project, _uuid(rng), _cwd_for(project), None))
    per_job = max(6, lines // len(jobs))
    for index, (project, session_id, cwd, existing) in enumerate(jobs):
        clock = _Clock(rng, start, pace=minutes * 60 / per_job, pauses=False)
        transcripts = _build_session(
            rng,
            clock,
            session_id=session_id,
            cwd=cwd,
            n_lines=per_job,
            junk=JUNK_KINDS[(seed + index) % len(JUNK_KINDS)],
            replay=None,
            sidechain_replays=True,
        )
        _fit(transcripts, start, end, stretch=True)
        _write_session(root, project, transcripts, append=existing is not None)
    return ground_truth(root)


def delete_older_than(root: Path, cutoff: datetime) -> list[Path]:
    """Delete transcript files whose mtime is before ``cutoff`` (like cleanupPeriodDays)."""
    limit = _utc(cutoff).timestamp()
    deleted = [path for path in _transcript_files(root) if path.stat().st_mtime < limit]
    for path in deleted:
        path.unlink()
        for parent in (path.parent, path.parent.parent):  # empty subagents/ and <session>/
            if parent != root / "projects" and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
    return deleted


# --------------------------------------------------------------------------------------
# Public API: ground truth
# --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Totals:
    """Token counts; ``cache_creation`` is the cache-write count ccusage reports."""

    input: int = 0
    output: int = 0
    cache_creation: int = 0
    cache_read: int = 0

    @property
    def total(self) -> int:
        """Sum of the four counts (ccusage's ``totalTokens``)."""
        return self.input + self.output + self.cache_creation + self.cache_read

    def add(self, other: Totals) -> None:
        """Add ``other`` in place."""
        self.input += other.input
        self.output += other.output
        self.cache_creation += other.cache_creation
        self.cache_read += other.cache_read

    def as_dict(self) -> dict[str, int]:
        """The counts plus ``total``, as a plain dict."""
        return {
            "input": self.input,
            "output": self.output,
            "cache_creation": self.cache_creation,
            "cache_read": self.cache_read,
            "total": self.total,
        }


@dataclass(slots=True)
class Entry:
    """One usage entry that survived ccusage's filtering and de-duplication."""

    timestamp: datetime  # UTC, millisecond precision
    model: str | None  # None for <synthetic> (API errors) and lines without a model
    project: str  # first directory under projects/
    session: str  # file stem, or the session directory of a sub-agent file
    tokens: Totals
    message_id: str | None
    request_id: str | None
    is_sidechain: bool
    fast: bool  # usage.speed was given (ccusage prefers such copies on ties)
    usage_limit_reset: datetime | None
    file: Path


@dataclass(slots=True)
class Block:
    """A non-gap 5-hour billing block as ccusage computes it."""

    start: datetime
    end: datetime
    last_activity: datetime  # ccusage's actualEndTime
    entries: int
    tokens: Totals
    models: list[str]  # first-seen order, without <synthetic>
    usage_limit_reset: datetime | None


Loader = Literal["daily", "main"]
"""Which ccusage 20.0.24 loader to mirror (they disagree about sidechain replays):

- ``"daily"``: ``claude daily`` and ``claude daily --instances``. A sidechain line that
  replays a message with a new requestId is a duplicate; the non-sidechain copy wins.
- ``"main"``: ``claude session``, ``monthly``, ``weekly`` and ``blocks``. Only exact
  (message id, requestId) matches are duplicates, so such replays count again.
"""


@dataclass
class GroundTruth:
    """The surviving entries of a transcript tree, per loader, plus aggregation helpers.

    Each helper defaults to the loader of the ccusage report it mirrors: ``total``,
    ``by_day``, ``by_day_project`` and ``by_project`` to "daily"; ``by_month``,
    ``by_session``, ``session_activity``, ``by_model`` and ``blocks`` to "main". ``stats`` counts
    what was read: files, lines, usage_lines (passed the byte prefilter), rejected (passed
    it but were dropped), duplicates and cross_file_duplicates (as the main loader sees
    them) and sidechain_replays (further lines that only the daily loader drops).
    """

    root: Path
    entries: dict[Loader, list[Entry]]  # in ccusage's insertion order
    stats: dict[str, int] = field(default_factory=dict)

    def total(self, loader: Loader = "daily") -> Totals:
        """Totals over everything (the ``totals`` object of a report)."""
        return self._group(loader, lambda entry: None).get(None, Totals())

    def by_day(self, tz: str = "UTC", loader: Loader = "daily") -> dict[str, Totals]:
        """Totals per ``YYYY-MM-DD`` in the IANA time zone ``tz`` (``claude daily``)."""
        zone = ZoneInfo(tz)
        return self._group(loader, lambda entry: entry.timestamp.astimezone(zone).date().isoformat())

    def by_day_project(self, tz: str = "UTC", loader: Loader = "daily") -> dict[tuple[str, str], Totals]:
        """Totals per (day, project) (``claude daily --instances``)."""
        zone = ZoneInfo(tz)
        return self._group(loader, lambda entry: (entry.timestamp.astimezone(zone).date().isoformat(), entry.project))

    def by_project(self, loader: Loader = "daily") -> dict[str, Totals]:
        """Totals per project directory."""
        return self._group(loader, lambda entry: entry.project)

    def by_month(self, tz: str = "UTC", loader: Loader = "main") -> dict[str, Totals]:
        """Totals per ``YYYY-MM`` in the IANA time zone ``tz`` (``claude monthly``)."""
        zone = ZoneInfo(tz)
        return self._group(loader, lambda entry: entry.timestamp.astimezone(zone).strftime("%Y-%m"))

    def by_session(self, loader: Loader = "main") -> dict[tuple[str, str], Totals]:
        """Totals per (project, session) (``claude session``)."""
        return self._group(loader, lambda entry: (entry.project, entry.session))

    def session_activity(self, loader: Loader = "main") -> dict[tuple[str, str], tuple[datetime, datetime]]:
        """First and last entry timestamp per (project, session)."""
        spans: dict[tuple[str, str], tuple[datetime, datetime]] = {}
        for entry in self.entries[loader]:
            key = (entry.project, entry.session)
            first, last = spans.get(key, (entry.timestamp, entry.timestamp))
            spans[key] = (min(first, entry.timestamp), max(last, entry.timestamp))
        return spans

    def by_model(self, loader: Loader = "main") -> dict[str, Totals]:
        """Totals per model name (summed ``modelBreakdowns``); <synthetic> is left out."""
        totals = self._group(loader, lambda entry: entry.model)
        return {model: sums for model, sums in totals.items() if model is not None}

    def blocks(self, hours: float = 5, loader: Loader = "main") -> dict[datetime, Block]:
        """Non-gap billing blocks keyed by start time (``claude blocks``).

        A block starts at its first entry floored to the UTC hour; the next entry that
        is more than ``hours`` after the block start or after the previous entry starts
        a new block.
        """
        length = timedelta(hours=hours)
        blocks: dict[datetime, Block] = {}
        current: list[Entry] = []
        start = datetime.min.replace(tzinfo=UTC)
        for entry in sorted(self.entries[loader], key=lambda item: item.timestamp):
            if current and (entry.timestamp - start > length or entry.timestamp - current[-1].timestamp > length):
                blocks[start] = _make_block(start, length, current)
                current = []
            if not current:
                start = entry.timestamp.replace(minute=0, second=0, microsecond=0)
            current.append(entry)
        if current:
            blocks[start] = _make_block(start, length, current)
        return blocks

    def _group(self, loader: Loader, key: Callable[[Entry], Hashable]) -> dict:
        groups: dict = {}
        for entry in self.entries[loader]:
            k = key(entry)
            if k not in groups:
                groups[k] = Totals()
            groups[k].add(entry.tokens)
        return groups


def ground_truth(root: Path) -> GroundTruth:
    """Apply the ccusage 20.0.24 rules to every transcript under ``root/projects``."""
    _check_root(root)
    names = ("files", "lines", "usage_lines", "rejected", "duplicates", "cross_file_duplicates", "sidechain_replays")
    stats = dict.fromkeys(names, 0)
    candidates: list[Entry] = []
    for path in _transcript_files(root):
        stats["files"] += 1
        project, session, _kind = _layout(root, path)
        for raw in path.read_bytes().split(b"\n"):
            stats["lines"] += bool(raw)
            if _USAGE_MARKER not in raw:
                continue
            stats["usage_lines"] += 1
            entry = _parse_line(raw, project, session, path)
            if entry is None:
                stats["rejected"] += 1
            else:
                candidates.append(entry)
    main = _dedupe(candidates, stats, sidechain_rule=False)
    daily = _dedupe(candidates, {}, sidechain_rule=True)
    stats["sidechain_replays"] = len(main) - len(daily)
    return GroundTruth(root=root, entries={"daily": daily, "main": main}, stats=stats)


# --------------------------------------------------------------------------------------
# Writer internals
# --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Line:
    """A line to write: a JSON object (its timestamp is filled in when rendered) or text."""

    ts: datetime
    obj: dict | str  # str: replayed line, written verbatim
    style: str = "compact"  # compact | spaced | truncated
    ts_style: str = "ms"  # ms | seconds | offset


class _Clock:
    """Session time: ``tick`` between lines, ``stream`` between copies, ``idle`` pauses."""

    def __init__(self, rng: random.Random, start: datetime, pace: float, pauses: bool) -> None:
        self.rng, self.now, self.pace, self.pauses = rng, start, pace, pauses

    def tick(self) -> datetime:
        self.now += timedelta(milliseconds=int(self.rng.uniform(0.2, 1.8) * self.pace * 1000))
        return self.now

    def stream(self) -> datetime:
        self.now += timedelta(milliseconds=self.rng.randint(150, 2500))
        return self.now

    def idle(self) -> None:
        if self.pauses and self.rng.random() < 0.12:
            self.now += timedelta(minutes=self.rng.uniform(5, 150))


class _Transcript:
    """Builds the lines of one transcript file (main session or sub-agent)."""

    def __init__(
        self,
        rng: random.Random,
        clock: _Clock,
        *,
        session_id: str,
        cwd: str,
        version: str,
        agent_id: str | None = None,
    ) -> None:
        self.rng, self.clock = rng, clock
        self.session_id, self.cwd, self.version, self.agent_id = session_id, cwd, version, agent_id
        self.lines: list[_Line] = []
        self.parent_uuid: str | None = None
        self.context = rng.randint(12_000, 30_000)  # cached prompt size; grows per request

    # -- envelope ----------------------------------------------------------------------

    def _emit(self, kind: str, ts: datetime, fields: dict, style: str = "compact") -> None:
        uid = _uuid(self.rng)
        obj: dict = {
            "parentUuid": self.parent_uuid,
            "isSidechain": self.agent_id is not None,
            "userType": "external",
            "cwd": self.cwd,
            "sessionId": self.session_id,
            "version": self.version,
            "gitBranch": "main",
        }
        if self.agent_id is not None:
            obj["agentId"] = self.agent_id
        obj.update(fields)
        obj.update(type=kind, uuid=uid, timestamp=None)
        self.parent_uuid = uid
        roll = self.rng.random()  # a few valid but unusual timestamp spellings
        ts_style = "seconds" if roll < 0.01 else "offset" if roll < 0.02 else "ms"
        self.lines.append(_Line(ts, obj, style, ts_style))

    # -- line kinds --------------------------------------------------------------------

    def user_prompt(self) -> None:
        """A prompt typed by the user (no usage)."""
        text = _text(self.rng, 20, 400)
        self._emit("user", self.clock.tick(), {"message": {"role": "user", "content": text}})

    def tool_result(self, tool_use_id: str, *, task: bool = False) -> None:
        """A tool result; Task results carry a nested "usage":{ that ccusage must skip."""
        content = [{"tool_use_id": tool_use_id, "type": "tool_result", "content": _text(self.rng, 100, 3000)}]
        fields: dict = {"message": {"role": "user", "content": content}}
        if task:
            fields["toolUseResult"] = {
                "status": "completed",
                "totalDurationMs": self.rng.randint(5_000, 300_000),
                "totalTokens": self.rng.randint(1_000, 90_000),
                "usage": {
                    "input_tokens": 3,
                    "cache_creation_input_tokens": 812,
                    "cache_read_input_tokens": 20_117,
                    "output_tokens": 404,
                },
            }
        self._emit("user", self.clock.tick(), fields)

    def assistant(self, model: str, *, tool: str | None = None) -> tuple[str, str]:
        """One API response, written as 1-3 streamed copies; returns (message id, tool id)."""
        rng = self.rng
        message_id, request_id = _message_id(rng), _request_id(rng)
        tool_id = f"toolu_01{_hex(rng, 22)}"
        usage = self._usage(model, allow_odd=True)
        copies = rng.choices((1, 2, 3), weights=(5, 3, 2))[0]
        if (
            copies > 1
            and "cache_creation" in usage
            and usage["cache_creation_input_tokens"] != sum(usage["cache_creation"].values())
        ):
            copies = 1  # keep odd cache accounting out of duplicate resolution
        outputs = _stream_outputs(rng, usage["output_tokens"], copies)
        blocks: list[dict] = [
            {"type": "thinking", "thinking": _text(rng, 50, 600), "signature": _hex(rng, 40)},
            {"type": "text", "text": _text(rng, 20, 500)},
            {"type": "tool_use", "id": tool_id, "name": tool or "Bash", "input": {"command": _text(rng, 5, 60)}},
        ]
        if tool is None:
            blocks.pop()
        for index, output in enumerate(outputs):
            message = {
                "model": model,
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "content": [blocks[min(index + 3 - copies, len(blocks) - 1)]],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {**usage, "output_tokens": output},
            }
            ts = self.clock.tick() if index == 0 else self.clock.stream()
            self._emit("assistant", ts, {"message": message, "requestId": request_id})
        return message_id, tool_id

    def sidechain_replay(self, message_id: str, model: str) -> None:
        """Re-log a parent message with a new requestId (ccusage keeps the parent's copy)."""
        usage = self._usage(model)
        usage["cache_read_input_tokens"] += 50_000
        message = {
            "model": model,
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": _text(self.rng, 20, 200)}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        fields = {"message": message, "requestId": _request_id(self.rng)}
        self._emit("assistant", self.clock.tick(), fields)

    def api_error(self, *, usage_limit: bool) -> None:
        """A <synthetic> API-error line with zero usage."""
        ts = self.clock.tick()
        if usage_limit:
            reset = ts.replace(minute=0, second=0, microsecond=0)
            reset += timedelta(hours=self.rng.randint(1, 5))
            text = f"Claude AI usage limit reached|{int(reset.timestamp())}"
        else:
            text = 'API Error: 529 {"type":"error","error":{"type":"overloaded_error"}}'
        zero = {
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "server_tool_use": {"web_search_requests": 0},
            "service_tier": None,
            "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
        }
        message = {
            "id": _uuid(self.rng),
            "container": None,
            "model": "<synthetic>",
            "role": "assistant",
            "stop_reason": "stop_sequence",
            "stop_sequence": "",
            "type": "message",
            "usage": zero,
            "content": [{"type": "text", "text": text}],
        }
        fields = {"message": message, "requestId": _request_id(self.rng), "isApiErrorMessage": True}
        self._emit("assistant", ts, fields)

    def junk(self, kind: str) -> None:
        """A line with real-looking usage that ccusage 20 must drop (see JUNK_KINDS)."""
        model = "claude-sonnet-4-5-20250929"
        usage = self._usage(model)
        message = {
            "model": model,
            "id": _message_id(self.rng),
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": "junk"}],
            "usage": usage,
        }
        fields: dict = {"message": message, "requestId": _request_id(self.rng)}
        style = "compact"
        if kind == "not_json":
            style = "truncated"
        elif kind == "spaced_usage":
            style = "spaced"
        elif kind == "null_request_id":
            fields["requestId"] = None
        elif kind == "float_tokens":
            usage["input_tokens"] = 1.0
        elif kind == "negative_tokens":
            usage["output_tokens"] = -5
        elif kind == "unknown_version":
            fields["version"] = "unknown"
        else:
            raise ValueError(f"unknown junk kind {kind!r}")
        self._emit("assistant", self.clock.tick(), fields, style)

    def summary(self) -> None:
        """The summary line a resumed session starts with (no timestamp)."""
        obj = {"type": "summary", "summary": _text(self.rng, 10, 60), "leafUuid": _uuid(self.rng)}
        self.lines.append(_Line(self.clock.now, obj))

    def verbatim(self, lines: list[str]) -> None:
        """Replay earlier lines byte for byte, as a resumed session does."""
        self.lines.extend(_Line(self.clock.now, text) for text in lines)

    # -- token shapes ------------------------------------------------------------------

    def _usage(self, model: str, *, allow_odd: bool = False) -> dict:
        """Usage like the Anthropic API reports it; the cached context grows per request."""
        rng = self.rng
        created = rng.randint(0, 6_000) if rng.random() < 0.8 else rng.randint(6_000, 40_000)
        usage: dict = {
            "input_tokens": rng.randint(1, 12) if rng.random() < 0.9 else rng.randint(50, 5_000),
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": self.context,
        }
        self.context += created
        if self.context > 180_000:  # auto-compaction
            self.context = rng.randint(15_000, 40_000)
        if rng.random() < 0.8:  # Claude Code 2.x also splits cache writes by TTL
            one_hour = created if rng.random() < 0.15 else 0
            usage["cache_creation"] = {
                "ephemeral_5m_input_tokens": created - one_hour,
                "ephemeral_1h_input_tokens": one_hour,
            }
            if allow_odd and rng.random() < 0.01:  # ccusage reports 5m + 1h, not the field
                usage["cache_creation_input_tokens"] = created + rng.randint(1, 999)
        heavy = "opus" in model
        usage["output_tokens"] = rng.randint(1, 3_000 if heavy else 1_500)
        usage["service_tier"] = "standard"
        return usage


def _pick_model(rng: random.Random) -> str:
    """A main model drawn with the weights in MODELS."""
    return rng.choices(list(MODELS), weights=list(MODELS.values()))[0]


def _build_session(
    rng: random.Random,
    clock: _Clock,
    *,
    session_id: str,
    cwd: str,
    n_lines: int,
    junk: str | None,
    replay: list[str] | None,
    sidechain_replays: bool,
) -> list[_Transcript]:
    """Build one session: the main transcript first, then its sub-agent transcripts."""
    version = rng.choice(VERSIONS)
    main = _Transcript(rng, clock, session_id=session_id, cwd=cwd, version=version)
    transcripts = [main]
    if replay:
        main.summary()
        main.verbatim(replay)
    model = _pick_model(rng)
    junk_at = rng.randrange(n_lines)

    def written() -> int:
        return sum(len(t.lines) for t in transcripts)

    while written() < n_lines:
        main.user_prompt()
        for _ in range(rng.randint(1, 8)):
            if written() >= n_lines:
                break
            roll = rng.random()
            if junk and written() >= junk_at:
                main.junk(junk)
                junk = None
            elif roll < 0.03:
                main.api_error(usage_limit=rng.random() < 0.3)
            elif roll < 0.08:
                transcripts.append(_run_subagent(main, model, sidechain_replays))
            else:
                step_model = rng.choice(SIDE_MODELS) if rng.random() < 0.1 else model
                _, tool_id = main.assistant(step_model, tool=rng.choice(TOOLS))
                main.tool_result(tool_id)
        main.assistant(model)  # final answer of the turn
        clock.idle()
    if junk:  # junk_at was skipped over: add it, then a normal line so the file ends cleanly
        main.junk(junk)
        main.assistant(model)
    return transcripts


def _run_subagent(parent: _Transcript, model: str, replay: bool) -> _Transcript:
    """A Task call: the parent's tool_use, the sub-agent's own transcript, the result."""
    rng = parent.rng
    task_message_id, tool_id = parent.assistant(model, tool="Task")
    agent = _Transcript(
        rng, parent.clock, session_id=parent.session_id, cwd=parent.cwd, version=parent.version, agent_id=_hex(rng, 8)
    )
    agent_model = rng.choice((model, *SIDE_MODELS))
    agent.user_prompt()
    for _ in range(rng.randint(1, 5)):
        _, agent_tool = agent.assistant(agent_model, tool=rng.choice(TOOLS))
        agent.tool_result(agent_tool)
    agent.assistant(agent_model)
    if replay and rng.random() < 0.3:
        agent.sidechain_replay(task_message_id, model)
    parent.tool_result(tool_id, task=True)
    return agent


def _fit(transcripts: list[_Transcript], start: datetime, end: datetime, *, stretch: bool = False) -> None:
    """Squeeze new lines into [start, end] if the session ran past ``end``.

    With ``stretch`` the session is also stretched so that its last line is at ``end``.
    """
    new = [line for t in transcripts for line in t.lines if not isinstance(line.obj, str)]
    last = max((line.ts for line in new), default=start)
    if last == start or (last <= end and not stretch):
        return
    factor = (end - start) / (last - start)
    for line in new:
        line.ts = _ms(start + (line.ts - start) * factor)


def _write_session(root: Path, project: str, transcripts: list[_Transcript], *, append: bool) -> list[str]:
    """Write a session's files, set each mtime to its last line; return the main lines."""
    main_lines: list[str] = []
    for transcript in transcripts:
        folder = root / "projects" / project
        if transcript.agent_id is None:
            path = folder / f"{transcript.session_id}.jsonl"
        else:
            path = folder / transcript.session_id / "subagents" / f"agent-{transcript.agent_id}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        rendered = [_render(line) for line in transcript.lines]
        prefix = ""
        if append and path.exists() and path.stat().st_size:
            with path.open("rb") as fh:
                fh.seek(-1, os.SEEK_END)
                prefix = "" if fh.read(1) == b"\n" else "\n"
        with path.open("a" if append else "w", encoding="utf-8", newline="\n") as fh:
            fh.write(prefix + "\n".join(rendered) + "\n")
        stamp = _written_ts(transcript.lines[-1]).timestamp()
        os.utime(path, (stamp, stamp))
        if transcript.agent_id is None:
            main_lines = rendered
    return main_lines


def _render(line: _Line) -> str:
    """Serialise a line the way Claude Code does (compact JSON), or damage it on purpose."""
    if isinstance(line.obj, str):
        return line.obj
    if "timestamp" in line.obj:
        line.obj["timestamp"] = _format_ts(line.ts, line.ts_style)
    if line.style == "spaced":
        return json.dumps(line.obj, ensure_ascii=False)
    text = json.dumps(line.obj, ensure_ascii=False, separators=(",", ":"))
    if line.style == "truncated":
        return text[: text.index('"usage":{') + 40]
    return text


def _format_ts(ts: datetime, style: str) -> str:
    if style == "seconds":
        return ts.isoformat(timespec="seconds")[:19] + "Z"
    if style == "offset":
        return ts.astimezone(_OFFSET_ZONE).isoformat(timespec="milliseconds")
    return ts.isoformat(timespec="milliseconds")[:23] + "Z"


def _written_ts(line: _Line) -> datetime:
    return line.ts.replace(microsecond=0) if line.ts_style == "seconds" else line.ts


def _stream_outputs(rng: random.Random, final: int, copies: int) -> list[int]:
    """Output tokens of each streamed copy: identical, or strictly growing to ``final``."""
    if copies == 1 or rng.random() < 0.4 or final < copies:
        return [final] * copies
    partial = sorted(rng.sample(range(1, final), copies - 1))
    return [*partial, final]


def _cwd_of(path: Path, project: str) -> str:
    """The cwd recorded in a transcript, for continuing it realistically."""
    for raw in reversed(path.read_bytes().split(b"\n")):
        try:
            cwd = json.loads(raw).get("cwd")
        except (ValueError, AttributeError):
            continue
        if isinstance(cwd, str):
            return cwd
    return _cwd_for(project)


def _cwd_for(project: str) -> str:
    return DEFAULT_PROJECTS.get(project, f"/home/dev/{project}")


def _text(rng: random.Random, shortest: int, longest: int) -> str:
    size = rng.randint(shortest, longest)
    start = rng.randrange(len(_LOREM) - size)
    return _LOREM[start : start + size]


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(4 * digits):0{digits}x}"


def _uuid(rng: random.Random) -> str:
    h = _hex(rng, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _message_id(rng: random.Random) -> str:
    return f"msg_01{_hex(rng, 22)}"


def _request_id(rng: random.Random) -> str:
    return f"req_011C{_hex(rng, 20)}"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


# --------------------------------------------------------------------------------------
# Reader internals: the ccusage 20 rules, re-implemented
# --------------------------------------------------------------------------------------

_USAGE_MARKER = b'"usage":{'
_NULL_FIELD = re.compile(
    rb'"(?:id|cwd|model|speed|costUSD|version|sessionId|requestId|isApiErrorMessage'
    rb'|cache_read_input_tokens|cache_creation_input_tokens)":null'
)
_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})\Z")
_SEMVER_PREFIX = re.compile(r"\d+\.\d+\.\d")
_LIMIT_MARKER = b"Claude AI usage limit reached"


def _check_root(root: Path) -> None:
    """Refuse roots that ccusage 20.0.24 would misattribute.

    ccusage takes the project from the first path component named "projects" anywhere in
    the full path, so with CLAUDE_CONFIG_DIR=/x/projects/cfg it reports project "cfg"
    (daily) and projectPath "cfg/projects" with the project dir as session id.
    """
    if "projects" in root.absolute().parts:
        raise ValueError(f"{root}: ccusage misattributes data under a directory named 'projects'")


def _transcript_files(root: Path) -> list[Path]:
    """Every ``*.jsonl`` file under root/projects in ccusage's order.

    Like ccusage, symlinked files and directories inside projects/ are skipped.
    """
    found: list[Path] = []
    stack = [root / "projects"]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for item in entries:
            if item.is_dir(follow_symlinks=False):
                stack.append(Path(item.path))
            elif item.is_file(follow_symlinks=False) and item.name.endswith(".jsonl") and item.name != ".jsonl":
                found.append(Path(item.path))
    return sorted(found, key=str)  # code-point order == UTF-8 byte order


def _layout(root: Path, path: Path) -> tuple[str, str, str]:
    """(project, session, kind) for a transcript path, named the way ccusage 20 names them.

    ``kind`` is "main" for projects/<p>/<s>.jsonl and "subagent" for
    projects/<p>/<s>/subagents/<x>.jsonl; other layouts use the parent directory as the
    session, like ccusage.
    """
    parts = path.relative_to(root / "projects").parts
    project = parts[0] if parts[0].strip() else "unknown"
    if len(parts) == 2:
        return project, parts[1][: -len(".jsonl")], "main"
    if len(parts) >= 4 and parts[-2] == "subagents":
        return project, parts[-3], "subagent"
    return project, parts[-2] if len(parts) >= 2 else "unknown", "other"


def _parse_line(raw: bytes, project: str, session: str, path: Path) -> Entry | None:
    """One prefiltered line -> Entry, or None if ccusage 20 would drop it."""
    if _NULL_FIELD.search(raw):
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(message := data.get("message"), dict):
        return None
    usage = message.get("usage")
    if not isinstance(usage, dict):
        return None
    counts = [
        usage.get(key, 0)
        for key in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    ]
    if "input_tokens" not in usage or "output_tokens" not in usage:
        return None
    if not all(_is_count(value) for value in counts):
        return None
    inp, out, cache_write, cache_read = counts
    split = usage.get("cache_creation")
    if split is not None:  # rule 7: the TTL split wins over cache_creation_input_tokens
        if not isinstance(split, dict):
            return None
        parts = [split.get(key, 0) for key in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")]
        if not all(_is_count(value) for value in parts):
            return None
        cache_write = sum(parts)
    speed = usage.get("speed")
    if speed is not None and speed not in ("standard", "fast"):
        return None
    strings = {key: data.get(key) for key in ("sessionId", "requestId", "version")}
    strings["id"], strings["model"] = message.get("id"), message.get("model")
    if any(value is not None and not isinstance(value, str) for value in strings.values()):
        return None
    if any(value == "" for value in strings.values()):
        return None
    if strings["version"] is not None and not _SEMVER_PREFIX.match(strings["version"]):
        return None
    for key in ("isApiErrorMessage", "isSidechain"):
        if data.get(key) is not None and not isinstance(data.get(key), bool):
            return None
    if data.get("costUSD") is not None and not isinstance(data["costUSD"], int | float):
        return None
    timestamp = _parse_timestamp(data.get("timestamp"))
    if timestamp is None:
        return None
    model = strings["model"]
    if model == "<synthetic>":
        model = None
    elif model is not None and speed == "fast":
        model += "-fast"
    return Entry(
        timestamp=timestamp,
        model=model,
        project=project,
        session=session,
        tokens=Totals(inp, out, cache_write, cache_read),
        message_id=strings["id"],
        request_id=strings["requestId"],
        is_sidechain=data.get("isSidechain") is True,
        fast=speed is not None,
        usage_limit_reset=_usage_limit_reset(raw) if data.get("isApiErrorMessage") is True else None,
        file=path,
    )


def _is_count(value: object) -> bool:
    return type(value) is int and value >= 0


def _parse_timestamp(value: object) -> datetime | None:
    """RFC 3339 (Z or offset, any fraction) -> aware UTC datetime truncated to ms."""
    if not isinstance(value, str) or not (match := _RFC3339.match(value)):
        return None
    base, fraction, zone = match.groups()
    millis = (fraction or "")[:3].ljust(3, "0")
    try:
        parsed = datetime.fromisoformat(f"{base}.{millis}{'+00:00' if zone == 'Z' else zone}")
    except ValueError:
        return None
    return parsed.astimezone(UTC)


def _usage_limit_reset(raw: bytes) -> datetime | None:
    """The <unix seconds> after "Claude AI usage limit reached|", if any."""
    at = raw.find(_LIMIT_MARKER)
    if at < 0 or (bar := raw.find(b"|", at)) < 0:
        return None
    digits = re.match(rb"\d+", raw[bar + 1 :])
    if not digits or int(digits.group()) <= 0:
        return None
    return datetime.fromtimestamp(int(digits.group()), UTC)


def _dedupe(candidates: list[Entry], stats: dict[str, int], *, sidechain_rule: bool) -> list[Entry]:
    """ccusage 20 de-duplication, in file order.

    Key (message id, request id). With ``sidechain_rule`` (daily loader) a sidechain copy
    also matches any kept entry with the same message id, and vice versa. The kept copy
    is replaced by a non-sidechain copy of a sidechain entry, else by one with a strictly
    larger token total, else (tie) by one with usage.speed. Lines without a message id
    are always kept.
    """
    kept: list[Entry] = []
    by_key: dict[tuple[str, str | None], list[int]] = {}
    by_id: dict[str, list[int]] = {}
    for entry in candidates:
        if entry.message_id is None:
            kept.append(entry)
            continue
        key = (entry.message_id, entry.request_id)
        index = next((i for i in by_key.get(key, ()) if kept[i].request_id == entry.request_id), None)
        if index is None and sidechain_rule:
            replays = (i for i in by_id.get(entry.message_id, ()) if entry.is_sidechain or kept[i].is_sidechain)
            index = next(replays, None)
        if index is None:
            by_key.setdefault(key, []).append(len(kept))
            by_id.setdefault(entry.message_id, []).append(len(kept))
            kept.append(entry)
            continue
        stats["duplicates"] = stats.get("duplicates", 0) + 1
        if kept[index].file != entry.file:
            stats["cross_file_duplicates"] = stats.get("cross_file_duplicates", 0) + 1
        if _replaces(entry, kept[index]):
            kept[index] = entry
            if index not in by_key.setdefault(key, []):
                by_key[key].append(index)
    return kept


def _replaces(candidate: Entry, existing: Entry) -> bool:
    if candidate.is_sidechain != existing.is_sidechain:
        return existing.is_sidechain
    if candidate.tokens.total != existing.tokens.total:
        return candidate.tokens.total > existing.tokens.total
    return candidate.fast and not existing.fast


def _make_block(start: datetime, length: timedelta, entries: list[Entry]) -> Block:
    tokens = Totals()
    models: list[str] = []
    reset = None
    for entry in entries:
        tokens.add(entry.tokens)
        if entry.model is not None and entry.model not in models:
            models.append(entry.model)
        reset = reset or entry.usage_limit_reset
    return Block(start, start + length, entries[-1].timestamp, len(entries), tokens, models, reset)


def iter_lines(root: Path) -> Iterator[tuple[Path, bytes]]:
    """Every (file, line) under root/projects in ccusage's file order (handy in tests)."""
    for path in _transcript_files(root):
        for raw in path.read_bytes().split(b"\n"):
            if raw:
                yield path, raw
