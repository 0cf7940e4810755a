"""The checker's throughput: QA pairs/s, claims/s, and where the time goes, per check.

    .venv/bin/python benchmarks/bench_check_speed.py [--bench ../shared/bench] [--squad-limit 2000]
        [--paragraphs 60] [--json]

A fixed sample: the first --squad-limit SQuAD v1.1 (part a) dev examples with same-paragraph
negatives (human answers, and another question's answer from the same paragraph), the first
--wice-limit (120) WiCE dev claims (answer-only mode, MiniLM on borderline claims), and the long answers of benchmarks/bench_long_answers.py (WiCE and
--paragraphs SQuAD paragraphs per half). spaCy and MiniLM are loaded and run once on a made-up
pair before any timing (their load is printed, not counted); every text cache is emptied before
each timed run, so no run profits from an earlier one. Prints, per checker configuration,
pairs/s (wall) and pairs per CPU-second (this process; the machine may be shared, see the
`uptime` load printed), the ratio against the lexical checks alone, then a breakdown of the
default checker's time by check (the shared text analysis a pair needs is counted in the check
that first asks for it), and long-answer claims/s (splitting and checking) with the split alone.
Then the default checker in --workers (2) processes, as `grounded check --workers 2` runs it: from
a cold start, and once warm (every process has checked --warm other pairs). Target (issue 9): >= 500 QA pairs/s and >= 50 claims/s on 2 cores, without an LLM.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "bench"
sys.path.insert(0, str(ROOT / "benchmarks"))


def clear_caches() -> None:
    """Empty every text cache of the loaded grounded modules (the model loaders stay loaded)."""
    from grounded.checker import context

    for name, module in list(sys.modules.items()):
        if not name.startswith("grounded") or module is None:
            continue
        for value in list(vars(module).values()):
            info = getattr(value, "cache_info", None)
            # model loaders are maxsize-1..4 caches (spaCy, MiniLM, checkers): keep them
            if info is not None and (info().maxsize or 1_000_000) > 16:
                value.cache_clear()
    context._SOURCES.clear()


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """fn's result, wall seconds and CPU seconds (this process)."""
    clear_caches()
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def load_models() -> dict[str, float]:
    """Load spaCy and MiniLM and run each once on a made-up pair (seconds each)."""
    from grounded.checker import default_checker
    from grounded.checker.answer_type import spacy_pipeline
    from grounded.checker.long_answers import long_answer_checker, source_chunks
    from grounded.types import QAPair

    out = {}
    started = time.perf_counter()
    spacy_pipeline()
    out["spaCy en_core_web_sm"] = time.perf_counter() - started
    started = time.perf_counter()
    src = source_chunks(["Ada Lovelace wrote the first program in 1843 in London."])
    warm = QAPair(id="warm", question="Who wrote the first program?", answer="Ada Lovelace")
    default_checker(semantic="all").check_many([(warm, src)])
    default_checker(answer_only=True).check_many([(warm, src)])
    long_answer_checker(every_pair=True).check_many([(warm, src)])
    out["MiniLM and first runs"] = time.perf_counter() - started
    return out


def pairs_sample(bench: Path, limit: int, wice_limit: int) -> tuple[list[Any], list[Any]]:
    """(SQuAD same-paragraph QA pairs, WiCE claims) as (pair, sources) items."""
    from grounded.eval.benchmarks import read_examples
    from grounded.eval.faithfulness import example_pair

    squad = list(
        read_examples(bench / "squad/dev-v1.1-part-a.json", "squad", negatives="same-paragraph")
    )[:limit]
    wice = list(read_examples(bench / "wice/claim-dev.jsonl", "wice"))[:wice_limit]
    return [example_pair(e) for e in squad], [example_pair(e) for e in wice]


def run_batches(checker: Any, items: Sequence[Any], batch_size: int = 64) -> list[Any]:
    """check_many over batches of batch_size, as `grounded check` and eval faithfulness run it."""
    out: list[Any] = []
    for i in range(0, len(items), batch_size):
        out.extend(checker.check_many(items[i : i + batch_size]))
    return out


def breakdown(checker: Any, items: Sequence[Any]) -> dict[str, float]:
    """Seconds per check of one run (each check's run and prefetch wrapped with a timer)."""
    spent: dict[str, float] = defaultdict(float)

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def inner(*a: Any, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[name] += time.perf_counter() - started

        return inner

    checks = [*checker.checks, *(m for m, _ in checker.models)]
    for chk in checks:
        chk.run = wrap(chk.name, chk.run)
        if hasattr(chk, "prefetch"):
            chk.prefetch = wrap(f"{chk.name} (batched model calls)", chk.prefetch)
    _, wall, _ = timed(lambda: run_batches(checker, items))
    spent["rest (contexts, calibration, verdicts)"] = wall - sum(spent.values())
    return dict(spent)


def in_workers(items: Sequence[Any], warm: Sequence[Any], workers: int) -> dict[str, float]:
    """The default checker in `workers` processes (`grounded check --workers`): pairs/s from a
    cold start (processes spawned, models loaded in each) and, in the same pool once `warm` (other
    pairs) went through, pairs/s of the checking alone, the ratio against one process."""
    from grounded.checker import default_checker
    from grounded.checker.stream import batched, check_in_worker, check_items, checker_pool
    from grounded.executors import ordered

    started = time.perf_counter()
    list(check_items(default_checker(), items, workers=workers))
    cold = time.perf_counter() - started
    with checker_pool(default_checker(), workers) as pool:
        # several small batches, so that every process gets one and loads its models
        for _ in ordered(pool, check_in_worker, batched(warm, 8)):
            pass
        started = time.perf_counter()
        for _ in ordered(pool, check_in_worker, batched(items, 64)):
            pass
        steady = time.perf_counter() - started
    return {
        "workers": workers,
        "cold_pairs_per_s": len(items) / cold,
        "pairs_per_s": len(items) / steady,
    }


def long_answers(bench: Path, paragraphs: int) -> dict[str, float]:
    """Claims/s of check_long's checker on bench_long_answers' answers, and of the split alone."""
    import bench_long_answers as bl

    from grounded.checker.claims import split_many
    from grounded.checker.long_answers import long_answer_checker, source_chunks
    from grounded.types import QAPair

    cases = bl.wice_cases(bench) + bl.squad_cases(bench, paragraphs)
    items = [
        (QAPair(id=str(i), question="", answer=c.answer, kind="long"), source_chunks(c.sources))
        for i, c in enumerate(cases)
    ]
    checker = long_answer_checker(every_pair=True)
    verdicts, wall, cpu = timed(lambda: run_batches(checker, items))
    claims = sum(len(v.claims) for v in verdicts)
    split, s_wall, _ = timed(lambda: split_many([(p.answer, p.question) for p, _ in items]))
    return {
        "answers": len(items),
        "claims": claims,
        "claims_per_s": claims / wall,
        "claims_per_cpu_s": claims / cpu,
        "split_claims_per_s": sum(len(c) for c in split) / s_wall,
    }


def main() -> int:
    from grounded.checker import default_checker

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, default=BENCH)
    ap.add_argument("--squad-limit", type=int, default=2000)
    ap.add_argument(
        "--paragraphs", type=int, default=60, help="SQuAD paragraphs per half (long answers)."
    )
    ap.add_argument(
        "--wice-limit", type=int, default=120, help="WiCE claims (MiniLM reads their long pages)."
    )
    ap.add_argument(
        "--workers", type=int, default=2, help="Processes of the --workers run (1: no such run)."
    )
    ap.add_argument(
        "--warm", type=int, default=200, help="Other SQuAD pairs that warm the worker processes."
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    report: dict[str, Any] = {"load_before": os.getloadavg()[0], "cores": os.cpu_count()}
    report["model_load_s (not timed)"] = load_models()
    squad, wice = pairs_sample(args.bench, args.squad_limit + args.warm, args.wice_limit)
    squad, warm = squad[: args.squad_limit], squad[args.squad_limit :]
    configs: list[tuple[str, Any, Sequence[Any]]] = [
        ("qa lexical only (answer_types=off)", default_checker(answer_types="off"), squad),
        ("qa default (grounded check)", default_checker(), squad),
        (
            "qa question checks off (bench_faithfulness)",
            default_checker(question_checks=False),
            squad,
        ),
        ("claims wice (answer_only, MiniLM borderline)", default_checker(answer_only=True), wice),
    ]
    runs = {}
    for name, checker, items in configs:
        _, wall, cpu = timed(lambda c=checker, i=items: run_batches(c, i))
        runs[name] = {
            "n": len(items),
            "pairs_per_s": len(items) / wall,
            "pairs_per_cpu_s": len(items) / cpu,
        }
    lexical = runs[configs[0][0]]["pairs_per_s"]
    for row in runs.values():
        row["vs_lexical"] = row["pairs_per_s"] / lexical
    report["runs"] = runs
    report["breakdown_default_s"] = breakdown(default_checker(), squad)
    if args.workers > 1:
        report["workers"] = in_workers(squad, warm, args.workers)
    report["long_answers"] = long_answers(args.bench, args.paragraphs)
    report["load_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(
        f"machine: {report['cores']} cores, load {report['load_before']:.2f} before, {report['load_after']:.2f} after"
    )
    for name, secs in report["model_load_s (not timed)"].items():
        print(f"loaded {name} in {secs:.1f} s (not part of any figure)")
    for name, row in runs.items():
        print(
            f"{name:46s} n={row['n']:5d}  {row['pairs_per_s']:6.0f} pairs/s  "
            f"{row['pairs_per_cpu_s']:6.0f} pairs per CPU-second  {row['vs_lexical']:.2f}x lexical"
        )
    if "workers" in report:
        w, one = report["workers"], runs[configs[1][0]]["pairs_per_s"]
        print(
            f"qa default in {w['workers']} processes (--workers) n={len(squad):5d}  "
            f"{w['pairs_per_s']:6.0f} pairs/s  {w['pairs_per_s'] / one:.2f}x one process; "
            f"from a cold start (spawn, models loaded) {w['cold_pairs_per_s']:.0f} pairs/s"
        )
    total = sum(report["breakdown_default_s"].values())
    print(f"time by check, qa default on {len(squad)} pairs ({total:.2f} s):")
    for name, secs in sorted(report["breakdown_default_s"].items(), key=lambda x: -x[1]):
        print(f"  {name:42s} {secs:6.2f} s  {secs / total:5.1%}")
    la = report["long_answers"]
    print(
        f"long answers: {la['answers']} answers, {la['claims']} claims, {la['claims_per_s']:.0f} claims/s "
        f"({la['claims_per_cpu_s']:.0f} per CPU-second); splitting alone {la['split_claims_per_s']:.0f} claims/s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
