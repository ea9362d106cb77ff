"""Training-data tooling: keep a diacritic-free twin next to every accented NLU example.

People type Vietnamese with and without diacritics, so every example written with diacritics
must also be in the training data stripped (``bot.text.strip_diacritics``). The files are edited
as text, line by line, so comments, ordering and the YAML layout stay exactly as written:

    python -m bot.nlu_tools add-twins [FILE ...]   # insert missing twins (default nlu_data/nlu/*.yml)
    python -m bot.nlu_tools check [FILE ...]       # exit 1 and list the examples that lack a twin
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from bot.text import has_diacritics, nfc, strip_diacritics

DEFAULT_GLOB = "nlu_data/nlu/*.yml"

_ITEM_KEY = re.compile(r"^\s*-\s*(intent|synonym|regex|lookup)\s*:")
_EXAMPLES_KEY = re.compile(r"^(?P<indent>\s*)examples\s*:\s*\|[-+]?\s*(#.*)?$")
_EXAMPLE_LINE = re.compile(r"^(?P<indent>\s*)-\s(?P<text>.*?)\s*$")


@dataclass(frozen=True)
class Example:
    """One example line of an ``examples: |`` block."""

    line: int  # 0-based index in the file's lines
    indent: str
    text: str
    block: int  # index of the block it belongs to


@dataclass(frozen=True)
class MissingTwin:
    path: Path
    line: int  # 1-based, for people
    text: str
    twin: str


def _iter_examples(lines: Sequence[str]) -> Iterator[Example]:
    """Example lines of every intent/synonym/lookup block (regex blocks hold patterns: skipped)."""
    kind: str | None = None
    block_indent: int | None = None
    block = -1
    for i, raw in enumerate(lines):
        line = raw.rstrip("\r\n")
        if block_indent is not None:
            if not line.strip():
                continue
            indent = len(line) - len(line.lstrip())
            if indent > block_indent:
                m = _EXAMPLE_LINE.match(line)
                if m and kind != "regex":
                    yield Example(i, m.group("indent"), m.group("text"), block)
                continue
            block_indent = None
        item = _ITEM_KEY.match(line)
        if item:
            kind = item.group(1)
        m = _EXAMPLES_KEY.match(line)
        if m:
            block_indent = len(m.group("indent"))
            block += 1


def _twin(text: str) -> str | None:
    text = nfc(text)
    return strip_diacritics(text) if has_diacritics(text) else None


def missing_twins(path: Path) -> list[MissingTwin]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    examples = list(_iter_examples(lines))
    present: dict[int, set[str]] = {}
    for ex in examples:
        present.setdefault(ex.block, set()).add(nfc(ex.text))
    out = []
    for ex in examples:
        twin = _twin(ex.text)
        if twin is not None and twin not in present[ex.block]:
            out.append(MissingTwin(Path(path), ex.line + 1, ex.text, twin))
    return out


def add_twins(path: Path | str) -> int:
    """Insert the stripped twin right after each accented example that lacks one in its block.

    Returns the number of lines inserted; the file is rewritten only when that is not zero.
    """
    path = Path(path)
    original = path.read_text(encoding="utf-8")
    lines = original.splitlines(keepends=True)
    examples = list(_iter_examples(lines))
    present: dict[int, set[str]] = {}
    for ex in examples:
        present.setdefault(ex.block, set()).add(nfc(ex.text))
    newline = "\r\n" if "\r\n" in original else "\n"
    inserts: dict[int, str] = {}
    for ex in examples:
        twin = _twin(ex.text)
        if twin is None or twin in present[ex.block]:
            continue
        present[ex.block].add(twin)
        inserts[ex.line] = f"{ex.indent}- {twin}{newline}"
    if not inserts:
        return 0
    out: list[str] = []
    for i, line in enumerate(lines):
        if i in inserts and not line.endswith(("\n", "\r")):
            line += newline
        out.append(line)
        if i in inserts:
            out.append(inserts[i])
    path.write_text("".join(out), encoding="utf-8")
    return len(inserts)


def _files(args: Sequence[str]) -> list[Path]:
    if args:
        return [Path(a) for a in args]
    return sorted(Path.cwd().glob(DEFAULT_GLOB))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.nlu_tools", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("add-twins", "insert missing diacritic-free twins"),
                            ("check", "list examples without a twin; exit 1 if any")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("files", nargs="*", help=f"NLU YAML files (default {DEFAULT_GLOB})")
    args = parser.parse_args(argv)
    files = _files(args.files)
    if not files:
        print(f"no files found ({DEFAULT_GLOB})", file=sys.stderr)
        return 2
    if args.command == "add-twins":
        total = 0
        for f in files:
            n = add_twins(f)
            total += n
            if n:
                print(f"{f}: added {n} twin(s)")
        print(f"{total} twin(s) added in {len(files)} file(s)")
        return 0
    missing = [m for f in files for m in missing_twins(f)]
    for m in missing:
        print(f"{m.path}:{m.line}: {m.text!r} lacks {m.twin!r}")
    if missing:
        print(f"{len(missing)} example(s) without their diacritic-free twin; "
              f"run: python -m bot.nlu_tools add-twins", file=sys.stderr)
        return 1
    print(f"all accented examples have their twin ({len(files)} file(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
