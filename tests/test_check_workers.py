"""`--workers`: checking in several processes gives the verdicts of one process, in input order."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from grounded.checker import default_checker, stream
from grounded.checker.stream import check_items
from grounded.cli import main
from grounded.errors import CheckError
from grounded.eval.benchmarks import read_examples
from grounded.eval.faithfulness import example_pair
from grounded.types import Verdict

DATA = Path(__file__).parent / "data" / "check"


def _items() -> list:
    examples = [
        *read_examples(DATA / "squad.json", "squad", negatives="same-paragraph"),
        *read_examples(DATA / "squad.json", "squad"),
        *read_examples(DATA / "halueval.json", "halueval"),
    ]
    return [example_pair(e) for e in examples]


def test_two_worker_processes_give_the_verdicts_of_one_in_input_order():
    items = _items()
    assert len(items) > 10
    one = list(check_items(default_checker(), items, batch_size=4))
    two = list(check_items(default_checker(), items, batch_size=4, workers=2))
    assert [item[0].id for item, _ in two] == [pair.id for pair, _ in items]
    assert [dataclasses.asdict(v) for _, v in two] == [dataclasses.asdict(v) for _, v in one]
    assert {v.supported for _, v in two} == {True, False}


def test_grounded_check_with_workers_writes_the_files_of_one_process(tmp_path):
    runner = CliRunner()
    outs = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        res = runner.invoke(
            main, ["check", str(DATA / "squad.json"), "--out", str(out), "--workers", workers]
        )
        assert res.exit_code == 0, res.output
        outs.append(out)
    for name in ("qa.jsonl", "rejected.jsonl"):
        rows = [
            [json.loads(line) for line in (out / name).read_text().splitlines()] for out in outs
        ]
        assert rows[0] == rows[1]
    assert (outs[0] / "qa.jsonl").read_text()


class _JudgedChecker:
    """Stands for a checker with an LLM judge: it must not be sent to other processes."""

    judge = object()

    def check(self, pair, sources):
        return Verdict(supported=True, score=1.0)


def test_a_checker_with_an_llm_judge_checks_in_this_process(monkeypatch):
    def no_pool(*args, **kwargs):
        raise AssertionError("a judged checker went to a process pool")

    monkeypatch.setattr(stream, "checker_pool", no_pool)
    items = _items()[:5]
    out = list(check_items(_JudgedChecker(), items, batch_size=2, workers=2))
    assert [item for item, _ in out] == items and all(v.supported for _, v in out)


def test_workers_must_be_at_least_one():
    res = CliRunner().invoke(
        main, ["check", str(DATA / "squad.json"), "--out", "unused", "--workers", "0"]
    )
    assert res.exit_code == 2 and "--workers" in res.output


def test_eval_faithfulness_with_workers_scores_as_one_process():
    runner = CliRunner()
    summaries = []
    for workers in ("1", "2"):
        args = ["eval", "faithfulness", str(DATA / "halueval.json"), "--format", "halueval"]
        res = runner.invoke(main, [*args, "--workers", workers, "--json"])
        assert res.exit_code == 0, res.output
        summaries.append(json.loads(res.output))
    for key in ("n", "confusion", "balanced_accuracy", "auroc", "rejected_by_reason"):
        assert summaries[0][key] == summaries[1][key]


class _DyingChecker:
    """A checker whose worker process dies on its first batch (as one killed for memory)."""

    def check(self, pair, sources):
        import os

        os._exit(1)


def test_a_worker_that_dies_is_a_clear_error_not_a_hang():
    items = _items()[:4]
    with pytest.raises(CheckError, match="fewer --workers"):
        list(check_items(_DyingChecker(), items, batch_size=1, workers=2))
