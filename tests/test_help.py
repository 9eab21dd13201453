"""--help of both scripts (issue 24.7): the main environment variables, the exit codes the docs list, and where the
full docs are (files that exist), wrapped to the terminal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ADMIN_IMPORTER, IMPORTER, ROOT


def help_text(script: Path, columns: int) -> str:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent", "COLUMNS": str(columns)}
    done = subprocess.run([sys.executable, str(script), "--help"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and not done.stderr, done.stderr
    return done.stdout


def documented_exit_codes(page: Path) -> set[int]:
    """The exit codes a page lists: the README's table rows `| 0 | …`, admin-api.md's "`0` …" sentence."""
    text = page.read_text(encoding="utf-8")
    table = re.findall(r"^\| (\d+) \|", text, re.M)
    return {int(code) for code in table or re.findall(r"`(\d+)`", text.split("Exit codes:")[1].split("\n\n")[0])}


@pytest.mark.parametrize(("script", "variables", "page"), [
    (IMPORTER, ["CH_HOST", "CCUSAGE_IMPORT_DB", "MACHINE_NAME", "CCUSAGE_AGENTS", "CCUSAGE_TIMEZONE"], "README.md"),
    (ADMIN_IMPORTER, ["ANTHROPIC_ADMIN_KEY", "ANTHROPIC_BASE_URL", "CH_HOST"], "docs/admin-api.md"),
], ids=["ccusage_importer", "claude_admin_importer"])
def test_help_names_the_settings_the_exit_codes_and_the_docs(script, variables, page):
    text = help_text(script, 80)
    epilog = text[text.index("main environment variables:"):]
    assert max(len(line) for line in epilog.splitlines()) <= 80, epilog
    for variable in variables:
        assert re.search(rf"^  {re.escape(variable)}\b", epilog, re.M), variable
    codes = {int(code) for code in re.findall(r"^  (\d+) ", epilog.split("exit codes:")[1], re.M)}
    assert codes == documented_exit_codes(ROOT / page)
    docs = " ".join(epilog.split("full documentation:")[1].split())
    assert str(ROOT / page) in docs and all(Path(path).exists() for path in re.findall(r"/\S+", docs))
