"""Long answers: faithful ones must pass; one unsupported claim must fail, flagged at its span.

    .venv/bin/python benchmarks/bench_long_answers.py [--bench ../shared/bench] [--paragraphs 120]
        [--threshold T] [--sweep] [--semantic off|borderline] [--json]

Two sets, built deterministically from ../shared/bench (each split in halves; thresholds are
chosen on the first half, figures reported on the second):
- `wice`: three supported WiCE claims in a row (file order) joined into one answer, their
  evidence pages as the sources (faithful); the same answer with one claim (position by hash)
  replaced by a not_supported WiCE claim, its page added to the sources (unfaithful, the fault
  is that claim's span).
- `squad`: per SQuAD v1.1 (part a) paragraph, the sentences holding three or four of its human
  answers, in paragraph order, each lightly paraphrased (bracketed asides and an opening clause
  that does not hold the answer dropped), the paragraph as the source (faithful); and three
  one-fault variants: one sentence's answer swapped for another answer of the same paragraph of
  the same form (number / name / phrase), a number or year changed, "not" inserted after
  is/was/are/were (the fault span is the changed text).
Figures: faithful answers passed (target >= 0.9), unfaithful caught (target >= 0.8), span
accuracy (of the caught ones, the share whose flagged claims overlap the fault), faithful
claims flagged, and claims/s (splitting and checking; target >= 50 on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "bench"
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_flips import flips  # noqa: E402  (one definition of a single-fact flip)

_PAREN = re.compile(r"\s*\([^()]*\)")
_NUM = re.compile(r"^[\d,.\s%$]+$|^\d")


@dataclass
class Case:
    """One long answer with its sources; fault: the (start, end) of the unfaithful text, or None."""

    set: str
    half: str
    kind: str  # faithful | inserted_claim | swap | year | number | not_inserted
    answer: str
    sources: list[str]
    fault: tuple[int, int] | None = None


def _hash(text: str) -> int:
    from grounded.types import content_hash

    return int(content_hash(text), 16)


def wice_cases(bench: Path) -> list[Case]:
    """Three supported claims per answer; unfaithful: one replaced by a not_supported claim."""
    rows = [
        json.loads(line)
        for line in (bench / "wice" / "claim-dev.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    good = [r for r in rows if r["label"] == "supported" and len(r["claim"].split()) >= 5]
    bad = [r for r in rows if r["label"] == "not_supported" and len(r["claim"].split()) >= 5]
    groups = [good[i : i + 3] for i in range(0, len(good) - 2, 3)]
    cases = []
    for g, group in enumerate(groups):
        half = "first" if g < len(groups) // 2 else "second"
        pool = bad[: len(bad) // 2] if half == "first" else bad[len(bad) // 2 :]
        claims = [r["claim"].strip() for r in group]
        sources = ["\n".join(r["evidence"]) for r in group]
        cases.append(Case("wice", half, "faithful", " ".join(claims), sources))
        wrong = pool[g % len(pool)]
        pos = _hash(" ".join(claims)) % 3
        before = " ".join(claims[:pos])
        start = len(before) + (1 if before else 0)
        mixed = claims[:pos] + [wrong["claim"].strip()] + claims[pos + 1 :]
        cases.append(
            Case(
                "wice",
                half,
                "inserted_claim",
                " ".join(mixed),
                [*sources, "\n".join(wrong["evidence"])],
                (start, start + len(wrong["claim"].strip())),
            )
        )
    return cases


def _paraphrase(sentence: str, answer: str) -> str:
    """Drop bracketed asides and an opening clause that does not hold the answer."""
    out = _PAREN.sub(lambda m: m.group() if answer in m.group() else "", sentence)
    head, sep, rest = out.partition(", ")
    if sep and answer not in head and len(rest.split()) >= 6 and len(head.split()) <= 8:
        out = rest[:1].upper() + rest[1:]
    return out.strip()


def _form(answer: str) -> str:
    if _NUM.match(answer):
        return "number"
    return "name" if answer[:1].isupper() else "phrase"


def squad_cases(bench: Path, paragraphs: int) -> list[Case]:
    """Per paragraph: answer sentences as a faithful answer, and three one-fault variants."""
    data = json.loads((bench / "squad" / "dev-v1.1-part-a.json").read_text(encoding="utf-8"))
    articles = data["data"]
    cases: list[Case] = []
    for a, article in enumerate(articles):
        half = "first" if a < len(articles) // 2 else "second"
        taken = sum(c.half == half and c.kind == "faithful" for c in cases)
        for para in article["paragraphs"]:
            if taken >= paragraphs:
                break
            case = _squad_paragraph(para, half)
            if case:
                cases.extend(case)
                taken += 1
    return cases


def _squad_paragraph(para: dict, half: str) -> list[Case]:
    from grounded.text import split_sentences

    context = para["context"]
    answers = list(dict.fromkeys(qa["answers"][0]["text"].strip() for qa in para["qas"]))
    chosen: list[tuple[str, str]] = []  # (sentence as written, its answer)
    for sent in split_sentences(context):
        ans = next((x for x in answers if x in sent and len(x) > 1), None)
        if ans is None or len(sent.split()) < 5:
            continue
        text = _paraphrase(sent, ans)
        if ans in text:
            chosen.append((text, ans))
        if len(chosen) == 4:
            break
    if len(chosen) < 3:
        return []
    answer = " ".join(t for t, _ in chosen)
    cases = [Case("squad", half, "faithful", answer, [context])]
    pos = _hash(answer) % len(chosen)
    sent, ans = chosen[pos]
    offset = sum(len(t) + 1 for t, _ in chosen[:pos])
    for kind, new_sent, span in _faults(sent, ans, answers):
        faulty = answer[:offset] + new_sent + answer[offset + len(sent) :]
        cases.append(
            Case("squad", half, kind, faulty, [context], (offset + span[0], offset + span[1]))
        )
    return cases


def _faults(sent: str, ans: str, answers: list[str]) -> list[tuple[str, str, tuple[int, int]]]:
    """(kind, faulty sentence, span of the change in it) for each fault that applies."""
    out = []
    other = next(
        (
            x
            for x in answers
            if x != ans
            and _form(x) == _form(ans)
            and x not in sent
            and ans not in x
            and x not in ans
        ),
        None,
    )
    if other is not None:
        at = sent.index(ans)
        out.append(("swap", sent[:at] + other + sent[at + len(ans) :], (at, at + len(other))))
    for kind, flipped in flips(sent):
        if kind not in ("year", "number", "not_inserted"):
            continue
        start = next(
            (i for i, (x, y) in enumerate(zip(sent, flipped, strict=False)) if x != y),
            min(len(sent), len(flipped)),
        )
        end = start + max(1, len(flipped) - len(sent) + 1) if kind == "not_inserted" else start + 4
        out.append((kind, flipped, (start, min(end, len(flipped)))))
    return out


def judge(
    cases: list[Case], *, semantic: str
) -> tuple[list[list[tuple[int, int, float, bool]]], float, int]:
    """Per case, its claims as (start, end, score, blocked) at threshold 0; seconds; claims checked."""
    import grounded
    from grounded.checker import BLOCKING
    from grounded.checker.long_answers import CLAIM_BLOCKING, LongAnswerChecker, source_chunks
    from grounded.types import QAPair

    claim_checker = grounded.default_checker(answer_only=True, threshold=0.0, semantic=semantic)
    checker = LongAnswerChecker(claim_checker=claim_checker, threshold=0.0)
    checker.check_many(
        [
            (
                QAPair(id="warm", question="", answer="Warm up the parser.", kind="long"),
                source_chunks(["x"]),
            )
        ]
    )
    items = [
        (QAPair(id=str(i), question="", answer=c.answer, kind="long"), source_chunks(c.sources))
        for i, c in enumerate(cases)
    ]
    started = time.perf_counter()
    verdicts = checker.check_many(items)
    seconds = time.perf_counter() - started
    out = [
        [
            (
                cv.start,
                cv.end,
                cv.score,
                any(r.code in BLOCKING | CLAIM_BLOCKING for r in cv.reasons),
            )
            for cv in v.claims
        ]
        for v in verdicts
    ]
    return out, seconds, sum(len(c) for c in out)


def figures(
    cases: list[Case], judged: list[list[tuple[int, int, float, bool]]], threshold: float
) -> dict[str, dict[str, float]]:
    """Per set and kind: share passed (faithful) or caught (unfaithful), and span accuracy."""
    cells: dict[str, list[int]] = defaultdict(
        lambda: [0, 0, 0, 0, 0]
    )  # n, ok, span_ok, claims, flagged claims
    for case, claims in zip(cases, judged, strict=True):
        flagged = [(s, e) for s, e, score, blocked in claims if blocked or score < threshold]
        passed = not flagged
        keys = (
            f"{case.set}/{case.kind}",
            f"{case.set}/{'faithful' if case.fault is None else 'unfaithful'}",
            "all/faithful" if case.fault is None else "all/unfaithful",
        )
        for key in dict.fromkeys(keys):
            cell = cells[key]
            cell[0] += 1
            cell[3] += len(claims)
            cell[4] += len(flagged)
            if case.fault is None:
                cell[1] += passed
            elif not passed:
                cell[1] += 1
                cell[2] += any(s < case.fault[1] and case.fault[0] < e for s, e in flagged)
    out = {}
    for key, (n, ok, span_ok, nclaims, nflagged) in sorted(cells.items()):
        row = {
            "n": n,
            "passed" if key.endswith("faithful") and "unfaithful" not in key else "caught": round(
                ok / n, 3
            ),
        }
        if "faithful" not in key or "unfaithful" in key:
            row["span_accuracy"] = round(span_ok / ok, 3) if ok else 0.0
        else:
            row["claims_flagged"] = round(nflagged / nclaims, 3) if nclaims else 0.0
        out[key] = row
    return out


def whole_answer(cases: list[Case]) -> dict[str, float]:
    """The figures of checking each answer as ONE claim (claim mode, its default threshold): the before."""
    import grounded
    from grounded.checker.long_answers import source_chunks
    from grounded.types import QAPair

    checker = grounded.default_checker(answer_only=True, semantic="off")
    verdicts = checker.check_many(
        [
            (QAPair(id=str(i), question="", answer=c.answer), source_chunks(c.sources))
            for i, c in enumerate(cases)
        ]
    )
    good = [v.supported for c, v in zip(cases, verdicts, strict=True) if c.fault is None]
    bad = [not v.supported for c, v in zip(cases, verdicts, strict=True) if c.fault is not None]
    return {
        "faithful_passed": round(sum(good) / max(1, len(good)), 3),
        "unfaithful_caught": round(sum(bad) / max(1, len(bad)), 3),
    }


def balanced(
    cases: list[Case], judged: list[list[tuple[int, int, float, bool]]], t: float
) -> tuple[float, float]:
    fig = figures(cases, judged, t)
    return fig.get("all/faithful", {}).get("passed", 0.0), fig.get("all/unfaithful", {}).get(
        "caught", 0.0
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, default=BENCH)
    ap.add_argument("--paragraphs", type=int, default=120, help="SQuAD paragraphs per half.")
    ap.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="Per-claim threshold (default: grounded.checker.long_answers.CLAIM_THRESHOLD).",
    )
    ap.add_argument(
        "--sweep",
        action="store_true",
        help="Print faithful passed / unfaithful caught per threshold on the first half.",
    )
    ap.add_argument(
        "--semantic",
        default="off",
        choices=["off", "borderline"],
        help="MiniLM for claims (off: the shipped default).",
    )
    ap.add_argument(
        "--baseline",
        action="store_true",
        help="Also check each held-out answer as one claim (the before).",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from grounded.checker.long_answers import CLAIM_THRESHOLD

    threshold = CLAIM_THRESHOLD if args.threshold is None else args.threshold
    cases = wice_cases(args.bench) + squad_cases(args.bench, args.paragraphs)
    judged, seconds, nclaims = judge(cases, semantic=args.semantic)
    halves = {
        h: (
            [c for c in cases if c.half == h],
            [j for c, j in zip(cases, judged, strict=True) if c.half == h],
        )
        for h in ("first", "second")
    }
    report = {h: figures(cs, js, threshold) for h, (cs, js) in halves.items()}
    report["speed"] = {
        "claims": nclaims,
        "seconds": round(seconds, 2),
        "claims_per_s": round(nclaims / seconds, 1),
    }
    if args.baseline:
        report["whole_answer_second_half"] = whole_answer(halves["second"][0])
    if args.sweep:
        cs, js = halves["first"]
        report["sweep_first_half"] = {
            f"{t:.2f}": balanced(cs, js, t) for t in [x / 20 for x in range(0, 13)]
        }
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"per-claim threshold {threshold}, semantic {args.semantic}")
    for h in ("first", "second"):
        print(f"-- {h} half" + (" (tuning)" if h == "first" else " (held out)"))
        for key, row in report[h].items():
            print(f"  {key:22s} " + "  ".join(f"{k} {v}" for k, v in row.items()))
    sp = report["speed"]
    print(f"speed: {sp['claims']} claims in {sp['seconds']} s = {sp['claims_per_s']} claims/s")
    if "whole_answer_second_half" in report:
        print(f"whole answer as one claim (held out): {report['whole_answer_second_half']}")
    for t, (p, c) in report.get("sweep_first_half", {}).items():
        print(f"  threshold {t}: faithful passed {p}  unfaithful caught {c}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
