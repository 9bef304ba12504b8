"""The README and docs/ stay true: every command they show parses with the real command line, every
`make` target they name exists, and every link between them leads to a file."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from sync_core.cli import parse_args

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "bench" / "README.md"]
FENCE = re.compile(r"```(?:bash|sh)\n(.*?)```", re.S)
PLACEHOLDER = re.compile(r"<[^>]+>")
A_GUID = "00000000-0000-0000-0000-000000000001"


def _shell_lines(page: Path) -> list[str]:
    lines = []
    for block in FENCE.findall(page.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def _commands(prefix: str) -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for line in _shell_lines(page):
            if f"-m {prefix}" not in line:
                continue
            words = shlex.split(PLACEHOLDER.sub(A_GUID, line))
            if words and words[0].endswith("python") and words[1:3] == ["-m", prefix]:
                found.append((page.name, shlex.join(words[3:])))
    return found


@pytest.mark.parametrize(("page", "args"), _commands("sync_core"))
def test_every_documented_sync_command_parses(page: str, args: str) -> None:
    parse_args(shlex.split(args))  # argparse exits (SystemExit) on anything it does not know


def test_the_docs_show_sync_commands() -> None:
    shown = {args.split()[0] for _, args in _commands("sync_core")}
    assert {"plan", "apply", "log", "doctor", "grant-permissions"} <= shown


def test_every_documented_make_target_exists() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    named = {line.split()[1] for page in PAGES for line in _shell_lines(page)
             if line.startswith("make ") and len(line.split()) > 1 and "=" not in line.split()[1]}
    assert named and named <= targets, f"make targets in the docs that the Makefile lacks: {named - targets}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_links_between_pages_lead_to_files(page: Path) -> None:
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
        if "://" in target:
            continue
        assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"
