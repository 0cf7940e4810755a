"""The learned verifier: windows as in training, the training recipe (one smoke step), the shipped
weights (offline, deterministic) and the checker's use of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grounded.checker.verifier import CLOSE, OPEN, Verifier, evidence_window, locate, window_at

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "tests" / "data" / "verifier_bench"
PASSAGE = (
    "The council has 40 seats. Members are elected by Single Transferable Vote every four "
    "years. The current leader is Maria Lopez of the Green Party."
)


def test_window_marks_the_answer_and_keeps_words_either_side() -> None:
    w = evidence_window(PASSAGE, "Single Transferable Vote", words=3)
    assert w == f"are elected by {OPEN}Single Transferable Vote{CLOSE} every four years."


def test_window_finds_the_answer_case_insensitively_and_fuzzily() -> None:
    assert locate(PASSAGE, "single transferable vote") == (
        PASSAGE.index("Single"),
        PASSAGE.index(" every"),
    )
    assert locate(PASSAGE, "Maria Lopes") is not None  # one letter off
    assert locate(PASSAGE, "Winston Churchill") is None


def test_window_without_the_answer_is_the_region_nearest_the_question() -> None:
    w = evidence_window(
        PASSAGE, "John Smith", "Who is the current leader of the Green Party?", words=4
    )
    assert OPEN not in w and "leader" in w


def test_window_at_clips_at_the_passage_edges() -> None:
    assert window_at("forty seats", 0, 5, words=10) == f"{OPEN}forty{CLOSE} seats"


def test_training_smoke_step_writes_a_loadable_verifier(tmp_path: Path) -> None:
    out = tmp_path / "verifier"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "training" / "train_verifier.py"),
            "--smoke",
            "--bench",
            str(BENCH),
            "--generated",
            str(tmp_path / "none.jsonl"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "held-out squad" in run.stdout
    assert {p.name for p in out.iterdir()} == {
        "verifier.safetensors",
        "verifier.json",
        "MODEL_CARD.md",
    }
    v = Verifier.load(out)
    items = [
        v.item("How many seats does the council have?", "40", PASSAGE),
        v.item("Who is the current leader?", "40", PASSAGE),
    ]
    first = v.probabilities(items)
    assert first == v.probabilities(items)
    assert all(0.0 <= p <= 1.0 for p in first)


def test_missing_weights_are_a_clear_error(tmp_path: Path) -> None:
    from grounded.errors import CheckError

    with pytest.raises(CheckError, match="no verifier weights"):
        Verifier.load(tmp_path)


shipped = pytest.mark.skipif(
    not Verifier.available(), reason="no verifier weights ship in this tree"
)


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier.load()


@shipped
def test_shipped_verifier_loads_offline_and_scores_deterministically(verifier: Verifier) -> None:
    # tests/conftest.py blocks every non-loopback socket: loading and scoring use no network
    items = [
        verifier.item("How many seats does the council have?", "40", PASSAGE),
        verifier.item("How are members elected?", "Single Transferable Vote", PASSAGE),
        verifier.item("Who is the current leader of the council?", "Maria Lopez", PASSAGE),
    ]
    first = verifier.probabilities(items)
    assert first == verifier.probabilities(items)
    # batching (padding to the longest row) does not change a score beyond float rounding
    assert first == pytest.approx([verifier.probabilities([i])[0] for i in items], abs=1e-5)
    assert all(p >= 0.5 for p in first), first


@shipped
def test_shipped_verifier_says_no_when_the_question_asks_for_another_span(
    verifier: Verifier,
) -> None:
    right = verifier.item("How many seats does the council have?", "40", PASSAGE)
    wrong = verifier.item("How many seats does the council have?", "four years", PASSAGE)
    swap = verifier.item(
        "Who is the current leader of the council?", "Single Transferable Vote", PASSAGE
    )
    p_right, p_wrong, p_swap = verifier.probabilities([right, wrong, swap])
    assert p_wrong < 0.5 < p_right
    assert p_swap < 0.5


def test_check_summary_says_which_model_backed_signals_read_pairs(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from grounded.cli import main

    fixture = ROOT / "tests" / "data" / "check" / "plain.jsonl"
    res = CliRunner().invoke(
        main, ["check", str(fixture), "--out", str(tmp_path), "--semantic", "all", "--json"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output[res.output.index("{") :])
    assert summary["model_signals"]["sem"] == summary["n"]  # MiniLM read every pair
    if not Verifier.available():
        assert summary["model_signals"]["ver"] == 0
    off = CliRunner().invoke(
        main,
        [
            "check",
            str(fixture),
            "--out",
            str(tmp_path / "off"),
            "--learned-verifier",
            "off",
            "--json",
        ],
    )
    assert off.exit_code == 0, off.output
    assert json.loads(off.output[off.output.index("{") :])["model_signals"]["ver"] == 0
