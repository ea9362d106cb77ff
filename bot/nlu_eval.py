"""Measure a trained model on the held-out NLU set: what matters is that risk is never missed.

    python -m bot.nlu_eval --model models/x.tar.gz --heldout tests/nlu/heldout.yml \
        --out docs/NLU.md [--train-seconds N] [--model-size-bytes N] [--train-report FILE.json] \
        [--min-risk-recall 0.98]

Figures: per-intent precision / recall / F1, overall and per variant of the message (Vietnamese
with diacritics, Vietnamese without them, English), macro F1, risk recall (a gold `emergency` or
`at_risk` message predicted as either), the false-escalation rate of ordinary messages, and the
same two numbers for the combined system in which the safety screen (bot/safety.py) can also
escalate. `evaluate()` is the importable entry point used by the publish gate.
"""
from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import logging
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from bot.text import fold, has_diacritics, nfc

logger = logging.getLogger(__name__)

RISK_INTENTS = frozenset({"emergency", "at_risk"})
HANDOFF_INTENTS = RISK_INTENTS | {"request_human"}
VARIANTS = ("vi_diacritics", "vi_plain", "en")
VARIANT_LABELS = {
    "vi_diacritics": "Vietnamese with diacritics",
    "vi_plain": "Vietnamese without diacritics / teencode",
    "en": "English",
}
TARGETS = {"risk_recall": 0.98, "false_escalation_rate": 0.05, "macro_f1": 0.90, "train_seconds": 600}
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAFETY_PHRASES = PROJECT_ROOT / "content" / "safety_phrases.yml"

# Folded forms of words that are common in English and (almost) never a Vietnamese syllable
# typed without diacritics. Short, diacritic-free messages are where langdetect is unreliable.
_EN_WORDS = frozenset(
    """i you he she we they my your me is are am was were be been the a an of to in on at for
    with from and or but not no yes do does did can could will would should what who where when
    why how this that there here it its please help want need have has had someone something
    anyone about just our them him her sorry thanks thank know think work job
    """.split()
)
# Folded Vietnamese syllables that are not English words.
_VI_WORDS = frozenset(
    """khong duoc co la gi minh toi em anh chi ban cua cho voi nguoi lam di ve nha o dau nao
    the nay roi nua thi ma va hay bi bao nhieu tien viec cong ty tim hoi giup oi a ak nhe nha
    nhu sao vay chua con mat goi tong dai muon can biet ho doi nuoc trung quoc duong day
    """.split()
)

# The shape of a Vietnamese syllable written without diacritics: onset, vowels, final consonant.
_VI_SYLLABLE = re.compile(r"^(ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdghklmnpqrstvx])?[aeiouy]{1,3}(ch|ng|nh|[cmnpt])?$")


@dataclass(frozen=True)
class Record:
    """One held-out message and what the system made of it."""

    text: str
    gold: str
    predicted: str
    confidence: float
    variant: str
    screen: bool | None = None  # did the safety screen escalate it (None: screen not run)


def infer_variant(text: str) -> str:
    """vi_diacritics, vi_plain (no diacritics, teencode) or en."""
    if has_diacritics(text):
        return "vi_diacritics"
    words = fold(text, teencode=False).split()
    en = sum(w in _EN_WORDS for w in words)
    vi = sum(w in _VI_WORDS for w in fold(text).split())
    if en != vi:
        return "en" if en > vi else "vi_plain"
    letters = [w for w in fold(text).split() if w.isalpha()]
    foreign = sum(not _VI_SYLLABLE.match(w) for w in letters)
    if letters and 2 * foreign > len(letters):
        return "en"
    if letters and foreign == 0:
        return "vi_plain"
    try:
        from langdetect import DetectorFactory, detect

        DetectorFactory.seed = 0
        return "en" if detect(text) == "en" else "vi_plain"
    except Exception:  # langdetect raises on text without letters
        return "vi_plain"


def load_heldout(path: str | Path) -> list[tuple[str, str]]:
    """(text, intent) pairs of a Rasa NLU YAML file, in file order."""
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    return [(m.get("text"), m.get("intent")) for m in data.intent_examples]


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _classification(records: Sequence[Record]) -> dict[str, Any]:
    """Per-intent P/R/F1 over the gold intents present; macro F1 is their unweighted mean."""
    gold = Counter(r.gold for r in records)
    tp = Counter(r.gold for r in records if r.gold == r.predicted)
    fp = Counter(r.predicted for r in records if r.gold != r.predicted)
    intents = {
        name: {**_prf(tp[name], fp[name], gold[name] - tp[name]), "support": gold[name]}
        for name in sorted(gold)
    }
    macro = sum(v["f1"] for v in intents.values()) / len(intents) if intents else 0.0
    accuracy = sum(tp.values()) / len(records) if records else 0.0
    return {"intents": intents, "macro_f1": macro, "accuracy": accuracy, "n": len(records)}


def _rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


def _escalation(records: Sequence[Record], escalates: Callable[[Record], bool]) -> dict[str, Any]:
    risk = [r for r in records if r.gold in RISK_INTENTS]
    ordinary = [r for r in records if r.gold not in HANDOFF_INTENTS]
    caught = sum(escalates(r) for r in risk)
    false = sum(escalates(r) for r in ordinary)
    return {
        "risk_recall": _rate(caught, len(risk)),
        "risk_support": len(risk),
        "false_escalation_rate": _rate(false, len(ordinary)),
        "ordinary_support": len(ordinary),
    }


def _nlu_escalates(r: Record) -> bool:
    return r.predicted in RISK_INTENTS


def _combined_escalates(r: Record) -> bool:
    return r.predicted in RISK_INTENTS or bool(r.screen)


def compute_metrics(records: Sequence[Record]) -> dict[str, Any]:
    """All figures from parsed records; pure, so it can be tested without a model."""
    result: dict[str, Any] = _classification(records)
    result.update(_escalation(records, _nlu_escalates))
    humans = [r for r in records if r.gold == "request_human"]
    result["request_human_recall"] = _rate(sum(r.predicted == "request_human" for r in humans), len(humans))
    result["request_human_handoff_recall"] = _rate(
        sum(r.predicted in HANDOFF_INTENTS for r in humans), len(humans)
    )
    result["by_variant"] = {}
    for variant in VARIANTS:
        subset = [r for r in records if r.variant == variant]
        if subset:
            result["by_variant"][variant] = {
                **_classification(subset),
                **_escalation(subset, _nlu_escalates),
            }
    if records and all(r.screen is not None for r in records):
        result["combined"] = _escalation(records, _combined_escalates)
        result["combined"]["screen_only_catches"] = [
            r.text for r in records if r.gold in RISK_INTENTS and r.screen and not _nlu_escalates(r)
        ]
    else:
        result["combined"] = None
    result["missed_risk"] = [
        {"text": r.text, "gold": r.gold, "predicted": r.predicted, "confidence": r.confidence,
         "screen": r.screen}
        for r in records if r.gold in RISK_INTENTS and not _nlu_escalates(r)
    ]
    result["false_escalations"] = [
        {"text": r.text, "gold": r.gold, "predicted": r.predicted, "confidence": r.confidence,
         "screen": r.screen}
        for r in records if r.gold not in HANDOFF_INTENTS and (_nlu_escalates(r) or r.screen)
    ]
    result["errors"] = [
        {"text": r.text, "gold": r.gold, "predicted": r.predicted, "confidence": r.confidence}
        for r in records if r.gold != r.predicted
    ]
    return result


def _safety_checker() -> tuple[Callable[[str], bool] | None, str | None]:
    """The safety screen's escalate() or, when it cannot be used, a note why."""
    try:
        from bot.safety import SafetyScreen, load_phrases
    except ImportError as exc:
        return None, f"safety screen not available ({exc}); combined figures skipped"
    if not SAFETY_PHRASES.exists():
        return None, f"{SAFETY_PHRASES.relative_to(PROJECT_ROOT)} not found; combined figures skipped"
    screen = SafetyScreen(load_phrases(SAFETY_PHRASES))
    return (lambda text: bool(screen.check(text).escalate)), None


def _quiet_structlog() -> None:
    """Rasa logs every parse at debug level through structlog; unconfigured, that goes to stdout."""
    import structlog

    if not structlog.is_configured():
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


async def _parse_all(model_path: str, texts: Sequence[str]) -> list[dict[str, Any]]:
    from rasa.core.agent import Agent

    _quiet_structlog()

    agent = Agent.load(model_path)
    return [await agent.parse_message(nfc(text)) for text in texts]


def _run(coro_factory: Callable[[], Any]) -> Any:
    """Run a coroutine to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coro_factory())).result()


def resolve_model(model: str | Path) -> Path:
    """A model file, or the newest *.tar.gz in a directory."""
    path = Path(model)
    if path.is_dir():
        models = sorted(path.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
        if not models:
            raise FileNotFoundError(f"no *.tar.gz model in {path}")
        return models[-1]
    if not path.exists():
        raise FileNotFoundError(f"model not found: {path}")
    return path


def evaluate(model_path: str, heldout: str) -> dict[str, Any]:
    """Parse every held-out message with the model and compute the figures (see module doc).

    Keys: intents, macro_f1, accuracy, n, risk_recall, risk_support, false_escalation_rate,
    ordinary_support, request_human_recall, request_human_handoff_recall, by_variant, combined
    (None when the safety screen is absent, with combined_note saying why), missed_risk,
    false_escalations, errors, model, heldout.
    """
    model = resolve_model(model_path)
    pairs = load_heldout(heldout)
    if not pairs:
        raise ValueError(f"no examples in {heldout}")
    parsed = _run(lambda: _parse_all(str(model), [t for t, _ in pairs]))
    checker, note = _safety_checker()
    records = []
    for (text, gold), result in zip(pairs, parsed):
        intent = result.get("intent") or {}
        records.append(
            Record(
                text=text,
                gold=gold,
                predicted=intent.get("name") or "None",
                confidence=float(intent.get("confidence") or 0.0),
                variant=infer_variant(text),
                screen=checker(text) if checker else None,
            )
        )
    metrics = compute_metrics(records)
    metrics["combined_note"] = note
    metrics["model"] = str(model)
    metrics["heldout"] = str(heldout)
    return metrics


# ---------------------------------------------------------------------------- report


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _check(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**NO**")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return out


def render_report(
    m: dict[str, Any], *, train_seconds: float | None = None, model_size_bytes: int | None = None
) -> str:
    """The Markdown report (docs/NLU.md)."""
    combined = m.get("combined")
    lines = [
        "# NLU evaluation",
        "",
        "Generated by `python -m bot.nlu_eval` on the held-out set "
        f"`{m['heldout']}` ({m['n']} messages never used in training); model `{Path(m['model']).name}`.",
        "Variants are inferred per message: diacritics present → Vietnamese with diacritics; otherwise "
        "English (word lists and the shape of Vietnamese syllables, then seeded langdetect) or Vietnamese without diacritics / teencode.",
        "Never copy these messages into training data: when training data is tuned against this set, "
        "add fresh held-out messages so that the figures stay honest.",
        "",
        "## Targets",
        "",
    ]
    t = TARGETS
    rows = [
        ["risk recall (NLU alone)", f"≥ {t['risk_recall']}", _num(m["risk_recall"]),
         _check(None if m["risk_recall"] is None else m["risk_recall"] >= t["risk_recall"])],
        ["false escalation of ordinary messages (NLU alone)", f"≤ {_pct(t['false_escalation_rate'])}",
         _pct(m["false_escalation_rate"]),
         _check(None if m["false_escalation_rate"] is None
                else m["false_escalation_rate"] <= t["false_escalation_rate"])],
    ]
    if combined:
        rows += [
            ["risk recall (NLU or safety screen)", f"≥ {t['risk_recall']}", _num(combined["risk_recall"]),
             _check(combined["risk_recall"] >= t["risk_recall"])],
            ["false escalation (NLU or safety screen)", f"≤ {_pct(t['false_escalation_rate'])}",
             _pct(combined["false_escalation_rate"]),
             _check(combined["false_escalation_rate"] <= t["false_escalation_rate"])],
        ]
    rows.append(["macro F1", f"≥ {t['macro_f1']}", _num(m["macro_f1"]), _check(m["macro_f1"] >= t["macro_f1"])])
    rows.append(["training time", f"< {t['train_seconds'] // 60} min",
                 "—" if train_seconds is None else f"{train_seconds:.0f} s",
                 _check(None if train_seconds is None else train_seconds < t["train_seconds"])])
    if model_size_bytes is not None:
        rows.append(["model size", "—", f"{model_size_bytes / 1e6:.1f} MB", "n/a"])
    lines += _table(["figure", "target", "value", "met"], rows)
    lines += [
        "",
        f"Risk messages: {m['risk_support']} (gold `emergency` or `at_risk`; predicting either counts). "
        f"Ordinary messages: {m['ordinary_support']} (gold not `emergency`, `at_risk` or `request_human`). "
        f"`request_human` recall: {_num(m['request_human_recall'])} "
        f"(handed off as any handoff intent: {_num(m['request_human_handoff_recall'])}). "
        f"Accuracy: {_num(m['accuracy'])}.",
        "",
    ]
    if combined is None:
        lines += [f"Combined system: {m.get('combined_note') or 'not measured'}.", ""]
    lines += ["## By variant", ""]
    lines += _table(
        ["variant", "messages", "macro F1", "accuracy", "risk recall", "false escalation"],
        [[VARIANT_LABELS[v], d["n"], _num(d["macro_f1"]), _num(d["accuracy"]), _num(d["risk_recall"]),
          _pct(d["false_escalation_rate"])] for v, d in m["by_variant"].items()],
    )
    lines += ["", "## Per intent", ""]
    variants = list(m["by_variant"])
    rows = []
    for name, s in m["intents"].items():
        per_variant = []
        for v in variants:
            d = m["by_variant"][v]["intents"].get(name)
            per_variant.append("—" if d is None else f"{d['f1']:.2f} ({d['support']})")
        rows.append([f"`{name}`", s["support"], _num(s["precision"]), _num(s["recall"]), _num(s["f1"]),
                     *per_variant])
    lines += _table(["intent", "n", "precision", "recall", "F1", *[f"F1 {v} (n)" for v in variants]], rows)

    def listing(title: str, items: list[dict[str, Any]]) -> None:
        nonlocal lines
        lines += ["", f"## {title} ({len(items)})", ""]
        if not items:
            lines.append("None.")
            return
        lines += _table(["message", "gold", "predicted", "confidence", "safety screen"],
                        [[r["text"], r["gold"], r["predicted"], f"{r['confidence']:.2f}",
                          "—" if r.get("screen") is None else ("escalates" if r["screen"] else "no")]
                         for r in items])

    listing("Risk messages the NLU missed", m["missed_risk"])
    listing("False escalations (NLU or safety screen)", m["false_escalations"])
    other = [e for e in m["errors"] if e["gold"] not in RISK_INTENTS]
    listing("Other misclassifications", other)
    return "\n".join(lines) + "\n"


def summary(m: dict[str, Any]) -> str:
    parts = [
        f"held-out messages: {m['n']}",
        f"macro F1: {m['macro_f1']:.3f}",
        f"risk recall: {_num(m['risk_recall'])} ({m['risk_support']} risk messages)",
        f"false escalation: {_pct(m['false_escalation_rate'])} ({m['ordinary_support']} ordinary)",
    ]
    if m.get("combined"):
        c = m["combined"]
        parts.append(f"combined with safety screen: risk recall {_num(c['risk_recall'])}, "
                     f"false escalation {_pct(c['false_escalation_rate'])}")
    else:
        parts.append(f"combined: {m.get('combined_note')}")
    for v, d in m["by_variant"].items():
        parts.append(f"  {v}: n={d['n']} macro F1 {d['macro_f1']:.3f} risk recall {_num(d['risk_recall'])} "
                     f"false escalation {_pct(d['false_escalation_rate'])}")
    return "\n".join(parts)


def _read_train_report(path: Path, model_name: str) -> dict[str, Any]:
    """The training report, if it describes the evaluated model (else nothing: figures would lie)."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"note: training report {path} not used ({exc})", file=sys.stderr)
        return {}
    if report.get("model") not in (None, model_name):
        print(f"note: training report {path} is for {report.get('model')}, not {model_name}; not used",
              file=sys.stderr)
        return {}
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.nlu_eval", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model .tar.gz, or a directory (newest model)")
    parser.add_argument("--heldout", default="tests/nlu/heldout.yml")
    parser.add_argument("--out", help="write the Markdown report here (e.g. docs/NLU.md)")
    parser.add_argument("--train-seconds", type=float)
    parser.add_argument("--model-size-bytes", type=int)
    parser.add_argument("--train-report", help="JSON from `python -m bot train` (train_seconds, size_bytes); "
                        "--train-seconds / --model-size-bytes take precedence")
    parser.add_argument("--min-risk-recall", type=float,
                        help="exit 1 when the NLU's risk recall is below this (publish gate)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        metrics = evaluate(args.model, args.heldout)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    train_seconds, size = args.train_seconds, args.model_size_bytes
    if args.train_report:
        report = _read_train_report(Path(args.train_report), Path(metrics["model"]).name)
        train_seconds = train_seconds if train_seconds is not None else report.get("train_seconds")
        size = size if size is not None else report.get("size_bytes")
    if size is None:
        size = Path(metrics["model"]).stat().st_size
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(
            render_report(metrics, train_seconds=train_seconds, model_size_bytes=size), encoding="utf-8"
        )
        print(f"report written to {args.out}")
    print(summary(metrics))
    if args.min_risk_recall is not None and (metrics["risk_recall"] or 0.0) < args.min_risk_recall:
        print(f"FAIL: risk recall {_num(metrics['risk_recall'])} < {args.min_risk_recall}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
