"""Each fact declared once (issue 20): the tables and views are the schema file's, the secrets are SECRETS, and
every other list of them is held equal to those here."""

from __future__ import annotations

import ast
import re

import pytest
from conftest import ROOT, run_admin, run_cli

import ccusage_importer as ci


def test_verify_setup_checks_every_table_of_the_schema_in_its_order():
    listed = re.search(r'^TABLES="([^"]*)"', (ROOT / "verify_setup.sh").read_text(), re.M)
    assert listed and listed.group(1).split() == ci.schema_names("table")


def test_table_row_counts_counts_every_table_of_machines():
    """Every ccusage_ table whose rows belong to machines is counted by the named query `table_row_counts`."""
    query = next(q for q in ci.load_queries() if q.name == "table_row_counts")
    counted = set(re.findall(r"FROM (ccusage_\w+)", query.sql))
    per_machine = {name for name in ci.schema_names("table") if "machine_name" in ci.SCHEMA[name].columns}
    assert counted == per_machine


def test_design_names_every_table_and_view():
    section = (ROOT / "docs" / "design.md").read_text().split("## Tables and views")[1].split("\n## ")[0]
    named = set(re.findall(r"`(ccusage_\w+)`", section))
    assert {*ci.schema_names("table"), *ci.schema_names("view")} <= named


def test_every_usage_table_the_plan_reads_is_filled_by_a_report_or_summed_from_one():
    filled = {table for report in ci.REPORTS.values() for table in report.tables}
    assert set(ci.USAGE_TABLES) == filled | {ci.MONTHLY}  # months are summed from the stored days


@pytest.mark.parametrize("name", ci.SECRET_VARIABLES)
def test_every_secret_is_hidden_in_every_form(name):
    value = "https://hooks.example/services/T0000/B1111/abcdefgh123456" if name.endswith("WEBHOOK") else "s3cr3t-v4lue"
    env = {name: value, "CH_USER": "writer"}
    hidden = ci.secret_texts(env)
    for form in (value, value.encode().hex(), ci.urllib.parse.quote(value, safe="")):
        assert ci.redact(f"before {form} after", hidden) == "before *** after"


@pytest.mark.parametrize("run", [run_cli, run_admin])
def test_both_scripts_hide_every_secret(run, tmp_path):
    """A setting's error line quotes what was typed; with a secret inside, neither script prints the secret (the
    Admin importer once left the alert webhook out of its list)."""
    secrets = {"CH_PASSWORD": "pw-1234567", "CCUSAGE_HASH_KEY": "hk-1234567", "ANTHROPIC_ADMIN_KEY": "sk-1234567",
               "CCUSAGE_ALERT_WEBHOOK": "https://hooks.example/services/T0000/B1111/tok9876543"}
    for name, secret in secrets.items():
        token = secret.rsplit("/", 1)[-1]
        env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "CCUSAGE_IMPORT_DB": str(tmp_path / "db"),
               "CH_DATABASE": f"bad-{token}", **secrets}
        done = run(env, "--check") if run is run_cli else run(env)
        output = done.stdout + done.stderr
        assert done.returncode != 0 and "CH_DATABASE" in output, output
        assert token not in output, f"{name}'s value printed: {output}"


def test_only_earlier_sections_are_used():
    """ccusage_importer.py reads top to bottom: a top-level name is used only in its own section or a later one
    (docs/design.md's code layout names the sections)."""
    source = (ROOT / "ccusage_importer.py").read_text()
    tree = ast.parse(source)
    starts = [n for n, line in enumerate(source.splitlines(), 1) if re.match(r"# [A-Z][^\n]*", line)
              and source.splitlines()[n - 2].startswith("# ----")]

    def section(line: int) -> int:
        return sum(1 for start in starts if start <= line)

    defined = {}
    for node in tree.body:
        names = [node.name] if isinstance(node, ast.FunctionDef | ast.ClassDef) else [
            t.id for t in getattr(node, "targets", [getattr(node, "target", None)]) if isinstance(t, ast.Name)]
        for name in names:
            defined.setdefault(name, section(node.lineno))
    annotations = {id(n) for node in ast.walk(tree) for a in _annotations(node) for n in ast.walk(a)}
    forward = sorted({(node.lineno, node.id) for node in ast.walk(tree) if isinstance(node, ast.Name)
                      and id(node) not in annotations and node.id in defined
                      and defined[node.id] > section(node.lineno)})
    assert not forward, "names used before their section: " + ", ".join(f"{name} (line {line})"
                                                                         for line, name in forward)


def _annotations(node: ast.AST) -> list[ast.AST]:
    """A node's type annotations (not evaluated: `from __future__ import annotations`), which may name any type."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        arguments = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs, node.args.vararg,
                     node.args.kwarg]
        return [a.annotation for a in arguments if a is not None and a.annotation] + ([node.returns] if node.returns
                                                                                       else [])
    return [node.annotation] if isinstance(node, ast.AnnAssign) else []
