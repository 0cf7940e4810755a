"""Benchmark readers, faithfulness metrics, and the `check` / `eval faithfulness` commands."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from grounded.cli import main
from grounded.errors import CheckError
from grounded.eval.benchmarks import read_examples
from grounded.eval.faithfulness import (
    auroc,
    balanced_accuracy,
    best_threshold,
    confusion,
    metrics,
    prf,
    sweep,
)

DATA = Path(__file__).parent / "data" / "check"


def test_read_halueval():
    exs = list(read_examples(DATA / "halueval.json", "halueval"))
    assert len(exs) == 6
    assert [e.label for e in exs[:2]] == [True, False]
    assert exs[0].answer == "The Larkspur Gazette" and exs[1].answer.startswith(
        "The Mill Street Review"
    )
    assert exs[0].contexts == exs[1].contexts and exs[0].question.startswith(
        "Which was founded first"
    )


def test_read_wice_uses_all_evidence_and_sets_partial_aside():
    exs = list(read_examples(DATA / "wice.jsonl", "wice"))
    assert [e.label for e in exs] == [True, False, None]
    assert exs[2].subset == "partial"
    # the whole page, not only the annotated supporting sentences (empty for not_supported)
    assert "Visitors must register" in exs[1].contexts[0] and exs[1].question == ""


def test_read_squad_with_swapped_negatives():
    exs = list(read_examples(DATA / "squad.json", "squad"))
    pos = [e for e in exs if e.label]
    neg = [e for e in exs if e.label is False]
    assert [e.answer for e in pos] == [
        "Wexlow",
        "1204",
        "King John",
        "the county of Wexlow",
        "Thomas Ferrier",
    ]
    assert len(neg) == 5
    for e in neg:
        assert e.answer not in e.contexts[0]  # a real answer to another question, absent here
    assert exs == list(read_examples(DATA / "squad.json", "squad", negatives="other-paragraph"))


def test_read_squad_same_paragraph_negatives():
    exs = list(read_examples(DATA / "squad.json", "squad", negatives="same-paragraph"))
    truth = {e.question: e.answer for e in exs if e.label}
    neg = {e.question: e.answer for e in exs if e.label is False}
    # in the context (lexical support passes), but the answer to another question of the paragraph
    for q, a in neg.items():
        assert a in exs[0].contexts[0] and a != truth[q]
        assert a in {"Wexlow", "1204", "King John", "the county of Wexlow"}
        assert all(
            e.metadata == {"negative": "same_paragraph_swap"} for e in exs if e.label is False
        )
    # never overlapping the true answer: Wexlow and "the county of Wexlow" are not swapped
    assert neg["In which county is Brenmoor?"] in {"1204", "King John"}
    assert neg["Where is the market town of Brenmoor?"] in {"1204", "King John"}
    # a paragraph with one question has no same-paragraph negative
    assert "Who founded Halbrook Mills?" not in neg
    assert len(neg) == 4
    # deterministic
    assert exs == list(read_examples(DATA / "squad.json", "squad", negatives="same-paragraph"))
    only = list(read_examples(DATA / "squad.json", "squad", negatives="none"))
    assert all(e.label for e in only) and len(only) == 5
    with pytest.raises(CheckError):
        list(read_examples(DATA / "squad.json", "squad", negatives="bogus"))
    with pytest.raises(CheckError):
        read_examples(DATA / "halueval.json", "halueval", negatives="same-paragraph")


def test_cli_eval_squad_same_paragraph():
    res = CliRunner().invoke(
        main,
        [
            "eval",
            "faithfulness",
            str(DATA / "squad.json"),
            "--format",
            "squad",
            "--negatives",
            "same-paragraph",
            "--semantic",
            "off",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert (
        out["negatives"] == "same-paragraph" and out["unsupported"] == 4 and out["supported"] == 5
    )
    # "Who granted ...?" -> "1204" and "When was ...?" -> "King John" are caught by the answer type
    assert out["rejected_by_reason"].get("answer_type_mismatch", 0) >= 1


def test_read_plain_jsonl():
    exs = list(read_examples(DATA / "plain.jsonl", "jsonl"))
    assert [e.label for e in exs] == [True, False, True, False]
    assert len(exs[2].contexts) == 2


def test_reader_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"context": "x", "answer": "y", "label": "maybe"}\n')
    with pytest.raises(CheckError, match="maybe"):
        list(read_examples(bad, "jsonl"))
    with pytest.raises(CheckError, match="unknown format"):
        read_examples(bad, "fever")
    bad.write_text('{"claim": "c"}\n')
    with pytest.raises(CheckError, match="missing field"):
        list(read_examples(bad, "wice"))


def test_metrics_on_hand_computed_cases():
    labels = [True, True, True, False, False]  # True = supported
    kept = [True, True, False, False, True]
    assert confusion(labels, kept) == {"tp": 1, "fp": 1, "tn": 2, "fn": 1}
    assert balanced_accuracy(labels, kept) == pytest.approx((2 / 3 + 1 / 2) / 2)
    p = prf(labels, kept)
    assert (
        p["precision"] == pytest.approx(0.5)
        and p["recall"] == pytest.approx(0.5)
        and p["f1"] == pytest.approx(0.5)
    )
    # AUROC: pairs (supported, unsupported): 0.9>0.2, 0.9>0.6, 0.6=0.6 (half), 0.6>0.2, 0.1<0.2, 0.1<0.6 -> 3.5/6
    scores = [0.9, 0.6, 0.1, 0.2, 0.6]
    assert auroc(labels, scores) == pytest.approx(3.5 / 6)
    assert auroc([True, False], [0.9, 0.1]) == 1.0
    assert math.isnan(auroc([True, True], [0.1, 0.2]))
    t, ba = best_threshold([True, False, True, False], [0.9, 0.3, 0.7, 0.5])
    assert ba == 1.0 and 0.5 < t <= 0.7
    rows = sweep(labels, scores, [0.5])
    assert rows[0]["balanced_accuracy"] == pytest.approx(
        balanced_accuracy(labels, [s >= 0.5 for s in scores])
    )
    m = metrics(labels, scores, kept)
    assert m["n"] == 5 and m["supported"] == 3 and m["unsupported"] == 2


def test_auroc_agrees_with_sklearn():
    from sklearn.metrics import roc_auc_score

    labels = [True, False, True, True, False, False, True, False]
    scores = [0.8, 0.3, 0.3, 0.95, 0.5, 0.1, 0.5, 0.7]
    assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))


@pytest.mark.parametrize(
    "fmt,name",
    [
        ("halueval", "halueval.json"),
        ("jsonl", "plain.jsonl"),
        ("squad", "squad.json"),
        ("wice", "wice.jsonl"),
    ],
)
def test_cli_eval_faithfulness_json(fmt, name):
    res = CliRunner().invoke(
        main,
        ["eval", "faithfulness", str(DATA / name), "--format", fmt, "--semantic", "off", "--json"],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert {"balanced_accuracy", "auroc", "n", "f1", "confusion", "sweep", "pairs_per_s"} <= set(
        out
    )
    assert out["n"] >= 2
    if fmt in ("halueval", "jsonl", "squad"):
        # these fixtures are clear-cut: every answer judged right
        assert out["balanced_accuracy"] == 1.0, out
    if fmt == "wice":
        assert out["subsets"]["partial"]["n"] == 1


def test_cli_eval_lists_dataset_and_limit():
    res = CliRunner().invoke(main, ["eval", "--help"])
    assert res.exit_code == 0 and "faithfulness" in res.output
    res = CliRunner().invoke(
        main,
        [
            "eval",
            "faithfulness",
            str(DATA / "halueval.json"),
            "--format",
            "halueval",
            "--limit",
            "2",
            "--semantic",
            "off",
            "--json",
        ],
    )
    assert json.loads(res.output)["n"] == 2


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


PASSAGE = "The Corbin Bridge spans 412 metres across the Ashby estuary. It opened in 1967."


def test_cli_check_splits_kept_and_rejected(tmp_path):
    from grounded.types import QAPair

    ours = QAPair(
        id="ours", question="When did the Corbin Bridge open?", answer="1967", contexts=(PASSAGE,)
    ).to_dict()
    rows = [
        ours,
        {"question": "How long is the Corbin Bridge?", "answer": "412 metres", "context": PASSAGE},
        {"question": "How long is the Corbin Bridge?", "answer": "950 metres", "context": PASSAGE},
        {"question": "The Corbin Bridge opened in 1967.", "answer": "1967", "contexts": [PASSAGE]},
    ]
    qa = _write(tmp_path / "qa.jsonl", rows)
    out = tmp_path / "out"
    res = CliRunner().invoke(
        main, ["check", str(qa), "--out", str(out), "--semantic", "off", "--json"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["n"] == 4 and summary["kept"] == 2 and summary["rejected"] == 2
    assert summary["rejected_by_reason"]["not_a_question"] == 1
    assert (
        "number_not_found" in summary["rejected_by_reason"]
        or "number_mismatch" in summary["rejected_by_reason"]
    )
    kept = [json.loads(line) for line in (out / "qa.jsonl").read_text().splitlines()]
    assert {r["id"] for r in kept} >= {"ours"} and all(r["verdict"]["supported"] for r in kept)
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert all(r["stage"] == "check" and r["reasons"] and r["pair"]["question"] for r in rejected)


def test_cli_check_rejects_a_row_without_context_and_says_to_pass_index(tmp_path):
    qa = _write(
        tmp_path / "qa.jsonl",
        [
            {"question": "Q?", "answer": "A"},
            {"question": "Q?", "answer": "A", "evidence": ["a quote"]},
        ],
    )
    res = CliRunner().invoke(
        main, ["check", str(qa), "--out", str(tmp_path / "o"), "--semantic", "off", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["rejected_by_reason"] == {"no_sources": 2}
    rejected = [
        json.loads(line) for line in (tmp_path / "o" / "rejected.jsonl").read_text().splitlines()
    ]
    assert "--index" in rejected[1]["reasons"][0]["message"]


# Labelled rows whose questions `check` rejects (not a question, answer in the question, about
# something else) besides plain answer-support failures: eval must count them the same way.
QUESTION_ROWS = [
    {"question": "The Corbin Bridge opened in 1967.", "answer": "1967", "label": False},
    {"question": "Did the Corbin Bridge open in 1967?", "answer": "1967", "label": False},
    {"question": "Tell me the year the Corbin Bridge opened", "answer": "1967", "label": False},
    {"question": "What is the capital of Peru?", "answer": "412 metres", "label": False},
    {
        "question": "How long is the Corbin Bridge, which spans 412 metres?",
        "answer": "412 metres",
        "label": False,
    },
    {"question": "Which estuary is 412 metres across.", "answer": "Ashby", "label": False},
    {"question": "When did the Corbin Bridge open?", "answer": "1971", "label": False},
    {"question": "When did the Corbin Bridge open?", "answer": "1967", "label": True},
    {"question": "How long is the Corbin Bridge?", "answer": "412 metres", "label": True},
]


def test_eval_faithfulness_jsonl_scores_like_check(tmp_path):
    rows = [{**r, "context": PASSAGE} for r in QUESTION_ROWS]
    qa = _write(tmp_path / "qa.jsonl", rows)
    res = CliRunner().invoke(
        main, ["check", str(qa), "--out", str(tmp_path / "o"), "--semantic", "off", "--json"]
    )
    assert res.exit_code == 0, res.output
    rejected = {
        json.loads(line)["pair"]["question"] + "|" + json.loads(line)["pair"]["answer"]
        for line in (tmp_path / "o" / "rejected.jsonl").read_text().splitlines()
    }
    caught = sum(f"{r['question']}|{r['answer']}" in rejected for r in rows if not r["label"])
    false_alarms = sum(f"{r['question']}|{r['answer']}" in rejected for r in rows if r["label"])
    res = CliRunner().invoke(
        main, ["eval", "faithfulness", str(qa), "--format", "jsonl", "--semantic", "off", "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert (out["confusion"]["tp"], out["confusion"]["fp"]) == (caught, false_alarms)
    assert out["question_checks"] is True and caught >= 5
    res = CliRunner().invoke(
        main,
        [
            "eval",
            "faithfulness",
            str(qa),
            "--format",
            "jsonl",
            "--semantic",
            "off",
            "--no-question-checks",
            "--json",
        ],
    )
    assert json.loads(res.output)["confusion"]["tp"] < caught


def test_cli_check_threshold_flag(tmp_path):
    qa = _write(
        tmp_path / "qa.jsonl",
        [{"question": "When did the Corbin Bridge open?", "answer": "1967", "context": PASSAGE}],
    )
    res = CliRunner().invoke(
        main,
        [
            "check",
            str(qa),
            "--out",
            str(tmp_path / "o"),
            "--semantic",
            "off",
            "--threshold",
            "1.0",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["rejected"] == 1
