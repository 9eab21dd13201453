"""The documentation: the query reference is what its generator writes, every relative link resolves, the README
stays a short guide and states the sizes uv really makes. Pure: reads files, runs nothing."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT, ci
from packaging.markers import Marker
from packaging.tags import sys_tags
from packaging.utils import parse_wheel_filename

sys.path.insert(0, str(ROOT / "docs"))
import make_query_reference as reference

README = ROOT / "README.md"
README_MAX_LINES = 250
LINKED_PAGES = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def prose_lines(text: str) -> list[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    lines, in_code = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code:
            lines.append(line)
    return lines


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings; a repeated heading gets -1, -2, ..."""
    found: set[str] = set()
    counts: dict[str, int] = {}
    for line in prose_lines(page.read_text(encoding="utf-8")):
        if heading := HEADING.match(line):
            slug = reference.github_anchor(heading.group(2))
            counts[slug] = counts.get(slug, -1) + 1
            found.add(f"{slug}-{counts[slug]}" if counts[slug] else slug)
    return found


def relative_links(page: Path) -> list[str]:
    """Link and image targets of a page that are not URLs with a scheme (https:, mailto:, ...)."""
    targets = []
    for line in prose_lines(page.read_text(encoding="utf-8")):
        targets += [t for t in LINK.findall(CODE_SPAN.sub("", line)) if not SCHEME.match(t)]
    return targets


def test_the_query_reference_is_generated_from_queries_sql():
    written = reference.REFERENCE_PAGE.read_text(encoding="utf-8")
    assert written == reference.current_reference(), (
        f"docs/queries.md differs from queries.sql: run `{reference.REGENERATE_COMMAND}` and commit the page")


def test_the_query_reference_covers_every_query_once_in_its_group():
    queries = ci.load_queries()
    groups = reference.query_groups(reference.QUERIES_SQL.read_text(encoding="utf-8"))
    assert [name for group in groups for name in group.query_names] == [q.name for q in queries]
    titles = [group.title for group in groups]
    assert len(set(titles)) == len(titles)


def test_every_example_command_line_is_accepted():
    for query in ci.load_queries():
        values = ci.query_parameters(query, reference.example_assignments(query))  # a bad value raises UserError
        assert set(values) == {param.name for param in query.params}


@pytest.mark.parametrize(("heading", "anchor"), [
    ("Check the setup: `--check`", "check-the-setup---check"),
    ("Import every hour: `setup_cronjob.sh`", "import-every-hour-setup_cronjobsh"),
    ("Privacy: keyed hashes", "privacy-keyed-hashes"),
    ("5-hour blocks", "5-hour-blocks"),
    ("`daily_cost_30d`", "daily_cost_30d"),
    ("Dashboard (continued)", "dashboard-continued"),
])
def test_anchors_are_made_as_github_makes_them(heading, anchor):
    assert reference.github_anchor(heading) == anchor


@pytest.mark.parametrize("page", LINKED_PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_points_at_an_existing_file_and_anchor(page: Path):
    broken = []
    for target in relative_links(page):
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked.relative_to(ROOT) if linked.is_relative_to(ROOT) else linked}")
        elif anchor and (linked.suffix != ".md" or anchor not in anchors(linked)):
            broken.append(f"{target}: no heading with anchor #{anchor} in {linked.relative_to(ROOT)}")
    assert not broken, f"broken links in {page.relative_to(ROOT)}:\n" + "\n".join(broken)


def test_the_pages_have_links_to_check():
    """Guards the link test itself: a parser that finds nothing would pass every page."""
    assert "docs/queries.md" in relative_links(README)
    assert "#daily_cost_30d" in relative_links(ROOT / "docs" / "queries.md")
    assert "daily_cost_30d" in anchors(ROOT / "docs" / "queries.md")


def test_the_readme_is_a_short_guide():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines, more than {README_MAX_LINES}: move reference material to docs/")


def locked_download_bytes(lock: dict, groups: tuple[str, ...] = ("dev",)) -> int:
    """Bytes of the wheels uv.lock makes this machine download: for every package the project needs (and the dev
    group's), the locked wheel that fits this interpreter and platform best."""
    tags = list(sys_tags())
    versions: dict[str, list[dict]] = {}
    for package in lock["package"]:
        versions.setdefault(package["name"], []).append(package)
    project = next(p for p in lock["package"] if p.get("source", {}).get("virtual") == ".")
    wanted = [*project.get("dependencies", []), *(d for g in groups for d in project["dev-dependencies"][g])]
    seen, total = set(), 0
    while wanted:
        dependency = wanted.pop()
        if dependency["name"] in seen or ("marker" in dependency and not Marker(dependency["marker"]).evaluate()):
            continue
        seen.add(dependency["name"])
        package = next(p for p in versions[dependency["name"]] if dependency.get("version") in (None, p["version"]))
        fits = [(min(tags.index(t) for t in wheel_tags if t in tags), wheel["size"]) for wheel in package["wheels"]
                if (wheel_tags := parse_wheel_filename(wheel["url"].rsplit("/", 1)[1])[3]) & set(tags)]
        total += min(fits)[1]
        wanted += package.get("dependencies", [])
    return total


def disk_usage(folder: Path) -> int:
    """Bytes a folder takes on disk, as `du` counts them (blocks, hard links once)."""
    seen, total = set(), 0
    for path in folder.rglob("*"):
        status = path.lstat()
        if (status.st_dev, status.st_ino) not in seen:
            seen.add((status.st_dev, status.st_ino))
            total += status.st_blocks * 512
    return total


def test_the_readme_states_the_download_and_venv_sizes_uv_makes():
    """Issue 24.4: the first download (from uv.lock, the wheels for this machine) and the .venv this suite runs in
    are what the README says, within 10 %."""
    text = " ".join(README.read_text(encoding="utf-8").split())
    download = int(re.search(r"a first download of about (\d+) MB", text).group(1))
    venv = int(re.search(r"a `\.venv` of about (\d+) MB on disk", text).group(1))
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    assert locked_download_bytes(lock) / 1e6 == pytest.approx(download, rel=0.1)
    assert disk_usage(Path(sys.prefix)) / 2**20 == pytest.approx(venv, rel=0.1)
