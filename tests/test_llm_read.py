"""The local model's reading: a round-trip span answer and a Yes/No from token probabilities."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from grounded.checker import default_checker
from grounded.checker.calibration import calibration_for
from grounded.checker.llm_read import (
    LLMReadCheck,
    judge_messages,
    reader_messages,
    yes_log_odds,
)
from grounded.llm import Completion
from grounded.prompting import format_passages
from grounded.types import Chunk, QAPair

PASSAGE = (
    "The Old Mill Bridge crosses the river Tavy at Lydford. It was built of local slate by the "
    "mason John Pike, and opened to carts in the spring of 1822."
)


class ReadingFake:
    """Answers reader requests from `answers` (question -> span) and Yes/No requests with a
    probability of Yes from `yes` (question -> p); records every request."""

    def __init__(self, answers: dict[str, str], yes: dict[str, float]) -> None:
        self.answers = answers
        self.yes = yes
        self.calls: list[tuple[list[dict[str, str]], dict[str, Any]]] = []

    def complete(self, messages: Sequence[dict[str, str]], **kw: Any) -> Completion:
        self.calls.append(([dict(m) for m in messages], kw))
        user = messages[-1]["content"]
        if kw.get("logprobs"):
            question = user.split("Question: ", 1)[1].split("\n", 1)[0]
            p = self.yes[question]
            top = (("Yes", math.log(p)), ("No", math.log(1 - p)))
            return Completion("Yes" if p >= 0.5 else "No", "fake", top_logprobs=top)
        questions = [
            line.split(". ", 1)[1]
            for line in user.split("Questions:\n", 1)[1].split("\n\n", 1)[0].splitlines()
        ]
        reply = {
            "answers": [
                {"n": i, "answer": self.answers.get(q, "not in the passage")}
                for i, q in enumerate(questions, 1)
            ]
        }
        return Completion(json.dumps(reply), "fake")


def _pair(question: str, answer: str) -> tuple[QAPair, list[Chunk]]:
    chunk = Chunk(id="c1", doc_id="d1", text=PASSAGE, start=0, end=len(PASSAGE))
    return QAPair(id=question, question=question, answer=answer), [chunk]


def test_yes_log_odds_reads_the_first_tokens_rivals() -> None:
    odds = yes_log_odds([("Yes", math.log(0.8)), ("No", math.log(0.2)), (" yes", -9.0)])
    assert odds == pytest.approx(math.log(0.8 / 0.2), abs=0.02)  # smoothed by exp(-YES_CLIP)
    assert yes_log_odds([("No", -0.01), ("Yes", -5.0)]) < -4  # type: ignore[operator]
    assert yes_log_odds([("Maybe", -0.1)]) is None
    assert yes_log_odds([], "Yes.") == pytest.approx(6.0)  # a text-only reply: clipped certainty


def test_prompts_put_the_passage_first_so_the_prefix_is_shared() -> None:
    block = format_passages([PASSAGE])
    judge = judge_messages(block, "Who built it?", "John Pike")
    reader = reader_messages(block, ["Who built it?"])
    assert judge[0] == reader[0]
    head = f"{block}\n\n"
    assert judge[1]["content"].startswith(head) and reader[1]["content"].startswith(head)
    # the reader never sees the proposed answer
    assert "John Pike" not in reader[1]["content"].removeprefix(head)


def test_a_passages_questions_go_to_the_reader_in_one_request() -> None:
    fake = ReadingFake(
        {"Who built the Old Mill Bridge?": "John Pike"},
        {"Who built the Old Mill Bridge?": 0.9, "What river does the bridge cross?": 0.8},
    )
    check = LLMReadCheck(fake)
    items = [
        _pair("Who built the Old Mill Bridge?", "the mason John Pike"),
        _pair("What river does the bridge cross?", "the river Tavy"),
    ]
    checker = default_checker(read=fake, read_mode="all")
    checker.models = [(m, p) if m.name != "llm_read" else (check, p) for m, p in checker.models]
    verdicts = checker.check_many(items)
    readers = [c for c, kw in fake.calls if not kw.get("logprobs")]
    assert len(readers) == 1 and "Questions:\n1. " in readers[0][-1]["content"]
    assert len(fake.calls) == 3  # one reader request, one Yes/No per pair
    first, second = verdicts
    assert first.signals["llm_agree"] == 1.0
    assert first.signals["llm_yes"] == pytest.approx(math.log(9), abs=0.05)  # smoothed
    assert second.signals["llm_agree"] == 0.0  # the reader said it is not in the passage
    assert "reader_cannot_answer" in {r.code for r in second.reasons}


def test_a_no_lowers_the_score_and_a_yes_raises_it() -> None:
    question = "Who built the Old Mill Bridge?"
    verdicts = {}
    for p in (0.02, 0.98):
        fake = ReadingFake({question: "John Pike"}, {question: p})
        checker = default_checker(read=fake, read_mode="all")
        verdicts[p] = checker.check_many([_pair(question, "John Pike")])[0]
    signals = dict(verdicts[0.98].signals)
    if "llm_yes" not in calibration_for("qa", signals).features:
        pytest.skip("no calibration fitted with the model's signals yet")
    assert verdicts[0.02].score < verdicts[0.98].score
    assert "llm_says_no" in {r.code for r in verdicts[0.02].reasons}


def test_a_failed_yes_no_keeps_the_pair_with_a_reason() -> None:
    class Failing(ReadingFake):
        def complete(self, messages: Sequence[dict[str, str]], **kw: Any) -> Completion:
            if kw.get("logprobs"):
                raise TimeoutError("the model took too long")
            return super().complete(messages, **kw)

    question = "Who built the Old Mill Bridge?"
    checker = default_checker(read=Failing({question: "John Pike"}, {}), read_mode="all")
    verdict = checker.check_many([_pair(question, "John Pike")])[0]
    assert "llm_yes" not in verdict.signals
    assert "llm_read_unavailable" in {r.code for r in verdict.reasons}


def test_check_verify_roundtrip_reads_with_the_named_model(tmp_path: Path) -> None:
    """`grounded check --verify roundtrip --model M` reads every keepable pair through M (cached)."""
    from grounded.cli import main
    from grounded.llm import Request, Response, register_transport

    seen: list[dict[str, Any]] = []

    class Reader:
        """A transport: the reader's answer, or a confident Yes with its rival's logprob."""

        async def handle_request(self, request: Request) -> Response:
            params = request.sampling.params()
            seen.append(params)
            if params.get("logprobs"):
                return Response("Yes", top_logprobs=(("Yes", -0.05), ("No", -3.0)))
            return Response(json.dumps({"answers": [{"n": 1, "answer": "John Pike"}]}))

    register_transport("readfake", Reader)
    rows = tmp_path / "qa.jsonl"
    rows.write_text(
        json.dumps(
            {
                "question": "Who built the Old Mill Bridge?",
                "answer": "John Pike",
                "context": PASSAGE,
            }
        )
        + "\n"
    )
    out = tmp_path / "out"
    args = ["check", str(rows), "--out", str(out), "--verify", "roundtrip"]
    result = CliRunner().invoke(main, [*args, "--model", "readfake/m", "--json"])
    assert result.exit_code == 0, result.output
    kept = [json.loads(line) for line in (out / "qa.jsonl").read_text().splitlines()]
    assert len(kept) == 1
    signals = kept[0]["verdict"]["signals"]
    assert signals["llm_agree"] == 1.0 and signals["llm_yes"] > 2.5
    assert any(p.get("logprobs") for p in seen)
    calls = len(seen)
    again = CliRunner().invoke(main, [*args, "--model", "readfake/m"])
    assert again.exit_code == 0, again.output
    assert len(seen) == calls  # the second run read from the cache
    # ... the Yes/No's probabilities included
    again_rows = [json.loads(line) for line in (out / "qa.jsonl").read_text().splitlines()]
    assert again_rows[0]["verdict"]["signals"]["llm_yes"] == signals["llm_yes"]
    bad = CliRunner().invoke(main, ["check", str(rows), "--out", str(out), "--model", "x/y"])
    assert bad.exit_code != 0 and "--verify roundtrip" in bad.output


def test_a_reading_below_the_threshold_rejects_with_every_reason() -> None:
    """The reader agreed, but the model's No brought the score under the threshold."""
    from grounded.checker.roundtrip import ReaderCheck

    check = ReaderCheck("John Pike", 1.0, None, llm_yes=-4.0, score=0.2, threshold=0.37)
    assert check.rejects
    assert [r.code for r in check.reasons] == ["llm_says_no", "low_support"]
    kept = ReaderCheck("John Pike", 1.0, None, llm_yes=3.0, score=0.9, threshold=0.37)
    assert not kept.rejects and kept.reasons == ()
