"""Single-fact flips: does the checker reject a sentence with one fact changed, against the original?

    .venv/bin/python benchmarks/bench_flips.py [--bench ../shared/bench] [--limit 400]

Sentences: the supported WiCE claims and, from SQuAD v1.1 (part a), the context sentence that
holds each human answer (with its question). Flips, each of one sentence (deterministic):
- `year`: a year (1000-2100) changed by 1 to 5 (to a number the sentence does not hold);
- `number`: another number (>= 2) changed the same way;
- `not_inserted`: "not" inserted after the first is/was/are/were;
- `not_removed`: "not" (or n't) removed where the sentence has one (not "not only").
Each flip is checked against the ORIGINAL sentence as its only source, in claim mode (the flip as
a standalone statement) and in QA mode (SQuAD: its question with the flipped sentence as the
answer; WiCE: no question), question checks off as for other benchmarks. The figure is the share
rejected (target: all). The unflipped originals are checked the same way: their share rejected is
the false-rejection rate. Figures for the first half of the sentences (which the mismatch rules
were looked at on) and for the second half (held out).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "bench"
_YEAR = re.compile(r"(?<![\d.,])(1[0-9]{3}|20[0-9]{2}|2100)(?![\d.,]\d)")
_NUMBER = re.compile(r"(?<![\d.,])([2-9]|[1-9][0-9]{1,2})(?![\d.,]?\d)")
# not before "not" (already negated) or "only" ("not only" negates nothing)
_COPULA = re.compile(r"\b(is|was|are|were)\b(?!\s+(?:not|n't|only|just|merely)\b)", re.IGNORECASE)
# "not only ..." does not negate: removing it flips no fact
_NOT = re.compile(r"\s+not\b(?!\s+(?:only|just|merely|least)\b)|n't\b", re.IGNORECASE)


def _changed(value: int, sentence: str) -> int:
    """`value` moved by 1 to 5 (chosen by hash) to a number the sentence does not hold."""
    from grounded.types import content_hash

    present = {int(d) for d in re.findall(r"\d+", sentence)}
    step = 1 + int(content_hash(sentence), 16) % 5
    new = value + step
    while new in present:
        new += 1
    return new


def flips(sentence: str) -> list[tuple[str, str]]:
    """(kind, flipped sentence) for each flip that applies to the sentence."""
    out = []
    m = _YEAR.search(sentence)
    if m:
        out.append(
            (
                "year",
                sentence[: m.start(1)]
                + str(_changed(int(m.group(1)), sentence))
                + sentence[m.end(1) :],
            )
        )
    years = {y.span(1) for y in _YEAR.finditer(sentence)}
    m = next((n for n in _NUMBER.finditer(sentence) if n.span(1) not in years), None)
    if m:
        out.append(
            (
                "number",
                sentence[: m.start(1)]
                + str(_changed(int(m.group(1)), sentence))
                + sentence[m.end(1) :],
            )
        )
    m = _COPULA.search(sentence)
    if m:
        out.append(("not_inserted", sentence[: m.end(1)] + " not" + sentence[m.end(1) :]))
    m = _NOT.search(sentence)
    if m:
        out.append(("not_removed", sentence[: m.start()] + sentence[m.end() :]))
    return out


def sentences(bench: Path, limit: int) -> list[tuple[str, str, str]]:
    """(source set, question or '', sentence): supported WiCE claims and SQuAD answer sentences."""
    from grounded.eval.benchmarks import read_examples
    from grounded.text import split_sentences

    out: list[tuple[str, str, str]] = []
    wice = bench / "wice" / "claim-dev.jsonl"
    if wice.exists():
        for ex in read_examples(wice, "wice"):
            if ex.label and len(ex.answer.split()) >= 5:
                out.append(("wice", "", ex.answer.strip()))
    squad = bench / "squad" / "dev-v1.1-part-a.json"
    if squad.exists():
        seen: set[str] = set()
        for ex in read_examples(squad, "squad"):
            if not ex.label:
                continue
            sent = next((s for s in split_sentences(ex.contexts[0]) if ex.answer in s), None)
            if sent is None or sent in seen or len(sent.split()) < 5:
                continue
            seen.add(sent)
            out.append(("squad", ex.question, sent))
            if sum(src == "squad" for src, _, _ in out) >= limit:
                break
    return out


def run(bench: Path, limit: int) -> dict[str, dict[str, dict[str, list[int]]]]:
    """Counts per mode, half and flip kind: [rejected, n]."""
    from grounded.checker import default_checker, inline_sources
    from grounded.types import QAPair

    checkers = {
        "claim": default_checker(semantic="off", answer_only=True),
        "qa": default_checker(semantic="off", question_checks=False),
    }
    rows = sentences(bench, limit)
    table: dict[str, dict[str, dict[str, list[int]]]] = {
        m: {h: defaultdict(lambda: [0, 0]) for h in ("first half", "second half")} for m in checkers
    }
    by_set: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for row in rows:
        by_set[row[0]].append(row)
    examples: list[tuple[str, str, str, QAPair]] = []  # half, kind, set, pair
    for src, items in by_set.items():
        for i, (_, question, sent) in enumerate(items):
            half = "first half" if i < len(items) // 2 else "second half"
            variants = [("original", sent), *flips(sent)]
            for kind, text in variants:
                pair = QAPair(
                    id=f"{src}-{i}-{kind}", question=question, answer=text, contexts=(sent,)
                )
                examples.append((half, kind, src, pair))
    misses: dict[str, list[str]] = defaultdict(list)
    for mode, checker in checkers.items():
        verdicts = checker.check_many([(p, inline_sources(p)) for _, _, _, p in examples])
        for (half, kind, _src, pair), v in zip(examples, verdicts, strict=True):
            cell = table[mode][half][kind]
            cell[0] += not v.supported
            cell[1] += 1
            if (kind == "original") == (not v.supported) and len(misses[f"{mode} {kind}"]) < 3:
                misses[f"{mode} {kind}"].append(f"{pair.answer[:100]!r} (score {v.score})")
    table["_misses"] = misses  # type: ignore[assignment]
    return table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, default=BENCH)
    ap.add_argument("--limit", type=int, default=400, help="SQuAD answer sentences to use.")
    ap.add_argument("--json", action="store_true", help="Print the counts as JSON.")
    ap.add_argument("--examples", action="store_true", help="Show a few misses per mode and kind.")
    args = ap.parse_args()
    table = run(args.bench, args.limit)
    misses = table.pop("_misses")
    if args.json:
        print(json.dumps(table, indent=1))
        return 0
    for mode, halves in table.items():
        for half, kinds in halves.items():
            flipped = [c for k, c in kinds.items() if k != "original"]
            rej, n = sum(c[0] for c in flipped), sum(c[1] for c in flipped)
            parts = ", ".join(
                f"{k} {c[0]}/{c[1]}" for k, c in sorted(kinds.items()) if k != "original"
            )
            orig = kinds.get("original", [0, 0])
            print(
                f"{mode:5s} {half:11s} flips rejected {rej}/{n} ({rej / max(n, 1):.1%}): {parts}; "
                f"originals rejected {orig[0]}/{orig[1]} ({orig[0] / max(orig[1], 1):.1%})"
            )
    if args.examples:
        for key, items in misses.items():
            for item in items:
                print(f"  miss [{key}] {item}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
