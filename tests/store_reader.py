"""Read a store many times in one opening: the tests' way to look at what an import wrote.

Each opening of a store costs an engine start (about 0.3 s, 1 s in a new process), so the tests ask for all they
need at once. `read(env, queries)` opens the store of `env` as the CLI's `--sql` does (under the store's lock, with
`open_store`, which also files the journal: runs and imports that skipped the engine) and gives each query's rows as
`--format json` prints them. Run as a script, it reads `{"name": [sql, parameters]}` as JSON on stdin and prints the
rows as JSON: conftest.py uses that when this process's engine cannot stand in for the CLI (see conftest.sql_many).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ccusage_importer as ci

Query = str | tuple[str, Mapping[str, Any]]


@contextmanager
def opened(env: Mapping[str, str]) -> Iterator[ci.Store]:
    """The store of `env`, opened and closed as `ccusage_importer.py --sql` does: an embedded one under its lock."""
    config = ci.Config.from_env(env)
    with ci.run_lock(config.lock_path(), config.lock_timeout, "query") if config.embedded else nullcontext():
        store = ci.open_store(config)
        try:
            yield store
        finally:
            store.close()


def rows_of(columns: list[str], rows: list[tuple[Any, ...]]) -> list[dict]:
    """Rows exactly as `--format json` prints them (dates and times as text, floats without binary noise)."""
    return [json.loads(line) for line in ci.format_table(columns, rows, "json").splitlines()] if rows else []


def answer(store: ci.Store, query: Query) -> list[dict]:
    sql, parameters = (query, None) if isinstance(query, str) else query
    return rows_of(*store.query(sql, parameters))


def read(env: Mapping[str, str], queries: Mapping[str, Query]) -> dict[str, list[dict]]:
    """Every query's rows, in one opening of the store, in the order given (a statement can change what follows)."""
    with opened(env) as store:
        return {name: answer(store, query) for name, query in queries.items()}


if __name__ == "__main__":
    asked = {name: (sql, parameters) for name, (sql, parameters) in json.load(sys.stdin).items()}
    print(json.dumps(read(os.environ, asked), ensure_ascii=False))
