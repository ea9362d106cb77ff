"""Example questions and topics, edited as lines of the repository's training-data files.

The accepted example questions are the Rasa training data in ``nlu_data/`` (what the serving
model was trained on, reviewed in git). Content staff's changes are drafts (database rows, see
:class:`bot.db.models.ExampleChange`) applied on top of these files, in memory here:

- ``add`` / ``edit`` / ``remove`` an example of an intent: one line of its ``examples: |`` block
  (an edited or removed example takes its diacritic-free twin with it; the twins of new examples
  are inserted by :func:`bot.nlu_tools.add_twins` when the files are written);
- ``add_topic``: a new FAQ intent ``faq_<name>``: a file ``nlu_data/nlu/<intent>.yml``, the
  intent in ``domain.yml`` and a rule ``intent -> action_answer`` in ``nlu_data/rules/faq.yml``.

Files are edited as text, line by line, so comments, order and layout stay as written and a
review in git shows exactly the change. Nothing here touches the database; nothing does I/O at
import.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from bot.text import fold, has_diacritics, nfc, strip_diacritics

NLU_DIR = "nlu_data/nlu"
RULES_FILE = "nlu_data/rules/faq.yml"
DOMAIN_FILE = "domain.yml"
TOPIC_PREFIX = "faq_"
MAX_EXAMPLE = 200
MAX_TITLE = 120
OPS = ("add", "edit", "remove", "add_topic")

_ITEM = re.compile(r"^(?P<indent>\s*)-\s*(?P<kind>intent|synonym|regex|lookup)\s*:\s*(?P<name>.*?)\s*(#.*)?$")
_EXAMPLES = re.compile(r"^(?P<indent>\s*)examples\s*:\s*\|[-+]?\s*(#.*)?$")
_EXAMPLE = re.compile(r"^(?P<indent>\s*)-\s(?P<text>.*?)\s*$")
_DOMAIN_ITEM = re.compile(r"^(?P<indent>\s+)-\s+(?P<name>[^\s#:]+)\s*(#.*)?$")
_TOPIC_NAME = re.compile(r"^faq_[a-z][a-z0-9_]{1,40}$")
_ENTITY_SYNTAX = re.compile(r"\[[^\]]*\]\s*[({]")


class DataError(ValueError):
    """A change that cannot be applied to the training data; ``message`` is for content staff."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Change:
    """One draft, as stored in ``content_example_change``."""

    op: str
    intent: str
    text: str | None = None
    old_text: str | None = None
    detail: Mapping[str, Any] | None = None
    id: int | None = None

    def label(self) -> str:
        what = {"add": f"add {self.text!r} to {self.intent}", "remove": f"remove {self.old_text!r} from {self.intent}",
                "edit": f"change {self.old_text!r} to {self.text!r} in {self.intent}",
                "add_topic": f"new topic {self.intent}"}.get(self.op, self.op)
        return f"change {self.id} ({what})" if self.id is not None else what


@dataclass
class Block:
    """The ``examples: |`` block of one intent."""

    intent: str
    path: str
    item_line: int
    indent: str  # of the example lines
    examples: list[tuple[int, str]] = field(default_factory=list)  # (line index, text)
    end: int = 0  # index of the line after the block's last example

    def texts(self) -> list[str]:
        return [t for _, t in self.examples]


# ------------------------------------------------------------------------------------ text rules

def clean_example(text: Any) -> str:
    """The normalised form of an example question; DataError says why it cannot be one."""
    if not isinstance(text, str):
        raise DataError("an example question must be text")
    if "\n" in text.strip() or "\r" in text.strip():
        raise DataError("an example question is one line")
    text = " ".join(nfc(text).split())
    if not text:
        raise DataError("the example question is empty")
    if len(text) > MAX_EXAMPLE:
        raise DataError(f"the example is {len(text)} characters long; keep it under {MAX_EXAMPLE}")
    if not any(c.isalnum() for c in text):
        raise DataError("the example question has no letters or digits")
    if _ENTITY_SYNTAX.search(text):
        raise DataError("'[...](...)' and '[...]{...}' mark entities in Rasa's format: write the question "
                        "without square brackets")
    return text


def clean_title(title: Any) -> str:
    if not isinstance(title, str) or not " ".join(title.split()):
        raise DataError("give the new topic a short title (what people ask about)")
    title = " ".join(nfc(title).split()).replace("|", "/")
    if len(title) > MAX_TITLE:
        raise DataError(f"the title is {len(title)} characters long; keep it under {MAX_TITLE}")
    return title


def check_topic_name(intent: Any) -> str:
    if not isinstance(intent, str) or not _TOPIC_NAME.match(intent):
        raise DataError("a new topic's name is 'faq_' and then lower-case letters, digits or '_' "
                        "(e.g. faq_job_scams), at most 44 characters")
    return intent


def twin(text: str) -> str | None:
    """The diacritic-free twin of an example written with diacritics."""
    text = nfc(text)
    return strip_diacritics(text) if has_diacritics(text) else None


def same_example(a: str, b: str) -> bool:
    """Two texts that train the same thing (diacritics, case and spacing aside)."""
    return fold(a, teencode=False) == fold(b, teencode=False)


def hand_written(texts: Iterable[str]) -> list[str]:
    """The examples of one block without the diacritic-free twins of others."""
    texts = list(texts)
    twins = {twin(t) for t in texts if has_diacritics(t)}
    return [t for t in texts if has_diacritics(t) or t not in twins]


def distinct_count(texts: Iterable[str]) -> int:
    """How many different questions a block holds (a twin counts with its original)."""
    return len({fold(t, teencode=False) for t in texts})


# ------------------------------------------------------------------------------------ the files

def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return lines


def _unquote(name: str) -> str:
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"":
        return name[1:-1]
    return name


def parse_blocks(path: str, lines: list[str]) -> list[Block]:
    """Every intent's examples block in one NLU file."""
    blocks: list[Block] = []
    intent: str | None = None
    current: Block | None = None
    block_indent = -1
    for i, raw in enumerate(lines):
        line = raw.rstrip("\r\n")
        if current is not None:
            if not line.strip():
                continue
            indent = len(line) - len(line.lstrip())
            if indent > block_indent:
                m = _EXAMPLE.match(line)
                if m:
                    if not current.examples:
                        current.indent = m.group("indent")
                    current.examples.append((i, m.group("text")))
                    current.end = i + 1
                continue
            blocks.append(current)
            current = None
        item = _ITEM.match(line)
        if item:
            intent = _unquote(item.group("name")) if item.group("kind") == "intent" else None
            continue
        m = _EXAMPLES.match(line)
        if m and intent:
            block_indent = len(m.group("indent"))
            current = Block(intent, path, i, " " * (block_indent + 2), [], i + 1)
            intent = None
    if current is not None:
        blocks.append(current)
    return blocks


class TrainingFiles:
    """The NLU files, ``domain.yml`` and the FAQ rules of one checkout, as lines in memory."""

    def __init__(self, nlu: dict[str, list[str]], domain: list[str], rules: list[str] | None) -> None:
        self.nlu = nlu
        self.domain = domain
        self.rules = rules
        self.changed: set[str] = set()

    @classmethod
    def load(cls, root: Path) -> "TrainingFiles":
        root = Path(root)
        nlu = {}
        for path in sorted((root / NLU_DIR).glob("*.y*ml")):
            nlu[f"{NLU_DIR}/{path.name}"] = _lines(path.read_text(encoding="utf-8"))
        rules_path = root / RULES_FILE
        rules = _lines(rules_path.read_text(encoding="utf-8")) if rules_path.exists() else None
        return cls(nlu, _lines((root / DOMAIN_FILE).read_text(encoding="utf-8")), rules)

    def copy(self) -> "TrainingFiles":
        other = TrainingFiles({k: list(v) for k, v in self.nlu.items()}, list(self.domain),
                              list(self.rules) if self.rules is not None else None)
        other.changed = set(self.changed)
        return other

    # -- reading

    def blocks(self) -> dict[str, Block]:
        """Intent -> its examples block (the first, when an intent has several)."""
        out: dict[str, Block] = {}
        for path, lines in self.nlu.items():
            for block in parse_blocks(path, lines):
                out.setdefault(block.intent, block)
        return out

    def all_blocks(self) -> list[Block]:
        return [b for path, lines in self.nlu.items() for b in parse_blocks(path, lines)]

    def examples(self) -> dict[str, list[str]]:
        """Intent -> every example line (twins included), over all blocks of the intent."""
        out: dict[str, list[str]] = {}
        for block in self.all_blocks():
            out.setdefault(block.intent, []).extend(block.texts())
        return out

    def domain_intents(self) -> list[str]:
        return [name for _, name, _ in self._domain_items()]

    def _domain_items(self) -> list[tuple[int, str, str]]:
        """(line index, intent, indent) of the domain's intents list."""
        items: list[tuple[int, str, str]] = []
        inside = False
        for i, raw in enumerate(self.domain):
            line = raw.rstrip("\r\n")
            if not inside:
                inside = line.rstrip() == "intents:"
                continue
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not line[0].isspace():
                break
            m = _DOMAIN_ITEM.match(line)
            if m:
                items.append((i, _unquote(m.group("name")), m.group("indent")))
        return items

    def text_of(self, path: str) -> str:
        if path == DOMAIN_FILE:
            return "".join(self.domain)
        if path == RULES_FILE:
            return "".join(self.rules or [])
        return "".join(self.nlu[path])

    # -- changes

    def apply(self, change: Change) -> None:
        """Apply one draft; DataError (naming the draft) when it no longer fits the data."""
        try:
            if change.op == "add":
                self._add(change.intent, clean_example(change.text))
            elif change.op == "remove":
                self._remove(change.intent, clean_example(change.old_text))
            elif change.op == "edit":
                self._edit(change.intent, clean_example(change.old_text), clean_example(change.text))
            elif change.op == "add_topic":
                detail = change.detail or {}
                self._add_topic(change.intent, clean_title(detail.get("title")),
                                [clean_example(t) for t in detail.get("examples") or []])
            else:
                raise DataError(f"unknown kind of change {change.op!r}")
        except DataError as exc:
            if change.id is None:
                raise
            raise DataError(f"{change.label()}: {exc.message}") from exc

    def _block(self, intent: str) -> Block:
        block = self.blocks().get(intent)
        if block is None:
            raise DataError(f"there is no intent {intent!r} with example questions")
        return block

    def _find(self, block: Block, text: str) -> int | None:
        for i, t in block.examples:
            if nfc(t) == text:
                return i
        return None

    def _add(self, intent: str, text: str) -> None:
        block = self._block(intent)
        for existing in block.texts():
            if same_example(existing, text):
                raise DataError(f"{text!r} is already an example of {intent} ({existing!r})")
        lines = self.nlu[block.path]
        lines.insert(block.end, f"{block.indent}- {text}\n")
        self.changed.add(block.path)

    def _remove(self, intent: str, text: str) -> int:
        block = self._block(intent)
        at = self._find(block, text)
        if at is None:
            raise DataError(f"{text!r} is not an example of {intent}")
        texts = block.texts()
        if not has_diacritics(text) and any(twin(t) == text for t in texts if has_diacritics(t)):
            original = next(t for t in texts if has_diacritics(t) and twin(t) == text)
            raise DataError(f"{text!r} is the diacritic-free copy of {original!r}: change or remove that one")
        lines = self.nlu[block.path]
        drop = [at]
        stripped = twin(text)
        if stripped is not None:
            others = [t for t in texts if nfc(t) != text and has_diacritics(t) and twin(t) == stripped]
            twin_at = self._find(block, stripped)
            if twin_at is not None and not others:
                drop.append(twin_at)
        for i in sorted(drop, reverse=True):
            del lines[i]
        self.changed.add(block.path)
        return at - sum(1 for i in drop if i < at)  # where the example was, after the deletions

    def _edit(self, intent: str, old: str, new: str) -> None:
        if nfc(old) == new:
            raise DataError("the new text is the same as the old one")
        block = self._block(intent)
        for existing in block.texts():
            if same_example(existing, new) and not same_example(existing, old):
                raise DataError(f"{new!r} is already an example of {intent} ({existing!r})")
        at = self._remove(intent, old)
        self.nlu[block.path].insert(at, f"{block.indent}- {new}\n")

    def _add_topic(self, intent: str, title: str, examples: list[str]) -> None:
        check_topic_name(intent)
        if intent in self.domain_intents() or intent in self.blocks():
            raise DataError(f"there is already an intent {intent!r}")
        if not examples:
            raise DataError("a new topic needs example questions")
        seen: list[str] = []
        for text in examples:
            if any(same_example(text, s) for s in seen):
                raise DataError(f"{text!r} is listed twice")
            seen.append(text)
        path = f"{NLU_DIR}/{intent}.yml"
        if path in self.nlu:
            raise DataError(f"the file {path} exists already")
        self.nlu[path] = [
            'version: "3.1"\n', "\n",
            f"# {title}\n",
            "# Added through the content admin; answered by action_answer with the content key "
            f"utter_{intent}.\n",
            "nlu:\n", f"  - intent: {intent}\n", "    examples: |\n",
            *[f"      - {t}\n" for t in examples],
        ]
        self.changed.add(path)
        self._add_domain_intent(intent)
        self._add_rule(intent)

    def _add_domain_intent(self, intent: str) -> None:
        items = self._domain_items()
        if not items:
            raise DataError("domain.yml has no intents list")
        faq = [item for item in items if item[1].startswith(TOPIC_PREFIX)]
        line, _, indent = (faq or items)[-1]
        self.domain.insert(line + 1, f"{indent}- {intent}\n")
        self.changed.add(DOMAIN_FILE)

    def _add_rule(self, intent: str) -> None:
        if self.rules is None:
            self.rules = ['version: "3.1"\n', "\n", "rules:\n"]
        if self.rules and self.rules[-1].strip():
            self.rules.append("\n")
        name = intent.replace("_", " ")
        self.rules += [f"  - rule: {name}\n", "    steps:\n", f"      - intent: {intent}\n",
                       "      - action: action_answer\n"]
        self.changed.add(RULES_FILE)

    # -- writing

    def write(self, root: Path) -> list[Path]:
        """Write the changed files under ``root`` (twins added); returns the paths written."""
        from bot.nlu_tools import add_twins

        root = Path(root)
        written: list[Path] = []
        for rel in sorted(self.changed):
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.text_of(rel), encoding="utf-8")
            if rel.startswith(NLU_DIR + "/"):
                add_twins(path)
            written.append(path)
        return written


# ------------------------------------------------------------------------------------ checks

def load_heldout(path: Path) -> set[str]:
    """The folded messages of the held-out test set (never to be used in training)."""
    if not Path(path).exists():
        return set()
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    out: set[str] = set()
    for item in data.get("nlu") or []:
        for line in str(item.get("examples", "")).splitlines():
            line = line.strip()
            if line.startswith("- "):
                out.add(fold(line[2:].strip()))
    return out


def example_problems(files: TrainingFiles, intent: str, text: str, heldout: set[str],
                     ignore: str | None = None) -> list[str]:
    """Why ``text`` may not become an example of ``intent``: the same question under another
    intent (the model could not learn both), or a message of the held-out test set."""
    problems: list[str] = []
    key = fold(text)
    for other, texts in files.examples().items():
        if other == intent:
            continue
        for t in texts:
            if fold(t) == key and (ignore is None or not same_example(t, ignore)):
                problems.append(f"{text!r} is already an example of {other} ({t!r}): one question "
                                "cannot teach two intents")
                break
    if key in heldout:
        problems.append(f"{text!r} is a message of the held-out test set (tests/nlu/heldout.yml), which must "
                        "never be trained on: write it in other words")
    return problems


def data_problems(files: TrainingFiles, heldout: set[str], min_examples: int) -> list[str]:
    """Everything that refuses a publish before Rasa's own validation: too few examples, a
    question under two intents, a held-out message in training, a domain intent without data."""
    problems: list[str] = []
    examples = files.examples()
    for intent in files.domain_intents():
        texts = examples.get(intent)
        if not texts:
            problems.append(f"intent {intent} is in domain.yml but has no example questions")
            continue
        n = distinct_count(texts)
        if n < min_examples:
            problems.append(f"intent {intent} has {n} example question{'s' if n != 1 else ''}; it needs at least "
                            f"{min_examples} different ones (variants of wording, with and without diacritics, "
                            "English)")
    domain = set(files.domain_intents())
    for intent in sorted(set(examples) - domain):
        problems.append(f"intent {intent} has examples but is not in domain.yml")
    owner: dict[str, tuple[str, str]] = {}
    for intent, texts in examples.items():
        for t in texts:
            key = fold(t)
            if key in owner and owner[key][0] != intent:
                problems.append(f"{t!r} ({intent}) is the same question as {owner[key][1]!r} ({owner[key][0]})")
            owner.setdefault(key, (intent, t))
            if key in heldout:
                problems.append(f"{t!r} ({intent}) is a message of the held-out test set")
    return problems
