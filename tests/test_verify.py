"""Round-trip verification: a reader answers the generated questions; disagreements are rejected."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import (
    FakeChecker,
    FakeIndex,
    FakeLLM,
    passages_of,
    quoting_responder,
    register_fake,
    server_error,
)

from grounded.checker.roundtrip import READER_SYSTEM, agreement, normalize_answer, token_f1
from grounded.cli import main
from grounded.errors import ConfigError
from grounded.generation import generate
from grounded.jsonl import read_jsonl


def three_sentence_index() -> FakeIndex:
    """Passages of three sentences each, so quoting_responder writes 3 pairs per call."""
    towns = ["Lydford", "Tavistock", "Okehampton", "Princetown"]
    docs = {
        t.lower(): [
            f"The bridge at {t} was built in {1800 + i * 7} by the mason John Pike. "
            f"Its arches are made of grey local slate. "
            f"Carts crossed it for the first time in the spring of {1801 + i * 7}."
        ]
        for i, t in enumerate(towns)
    }
    return FakeIndex.from_texts(docs)


def rows(path: Path) -> list[dict]:
    return list(read_jsonl(path)) if path.exists() else []


def is_reader(messages) -> bool:
    return messages[0]["content"] == READER_SYSTEM


def questions_of(messages) -> list[str]:
    return re.findall(r"^\d+\. (.*)$", messages[-1]["content"], re.M)


def true_answer(question: str, passages: list[str]) -> str:
    """What quoting_responder proposed: the words after the statement the question quotes."""
    prefix = re.search(r"statement '(.*)'\?$", question).group(1)
    for p in passages:
        at = p.find(prefix)
        if at >= 0:
            rest = p[at + len(prefix) :].split(".")[0]
            return rest.strip()
    return "not in the passage"


def reader(answer):
    """A responder: generation as quoting_responder, reader requests answered by `answer(q, passages)`."""

    def respond(messages):
        if not is_reader(messages):
            return quoting_responder(messages)
        passages = passages_of(messages)
        return json.dumps(
            {
                "answers": [
                    {"n": i, "answer": answer(q, passages)}
                    for i, q in enumerate(questions_of(messages), 1)
                ]
            }
        )

    return respond


def reader_calls(fake: FakeLLM) -> list[dict]:
    return [c for c in fake.calls if is_reader(c["messages"])]


@pytest.fixture
def fake():
    f = FakeLLM()
    register_fake(f)
    return f


def run(out, **kw):
    kw.setdefault("index", three_sentence_index())
    kw.setdefault("checker", FakeChecker())
    kw.setdefault("pairs_per_call", 3)
    return generate(out=out, model="fake/test-model", **kw)


# --- agreement -----------------------------------------------------------------------------------


def test_normalize_and_token_f1_follow_squad():
    assert normalize_answer("The  River Tavy!") == "river tavy"
    assert token_f1("the river Tavy", "Tavy") == pytest.approx(2 / 3)
    assert token_f1("1843", "1844") == 0.0


@pytest.mark.parametrize(
    ("proposed", "said", "code"),
    [
        ("local slate", "slate", None),  # F1 0.67
        ("John Pike", "the mason John Pike", None),  # contained
        ("12,000 people", "12000 people", None),  # fuzzy: number formatting
        ("1843", "1848", "reader_disagrees"),
        ("Alan Stevenson", "Robert Stevenson", "reader_disagrees"),  # F1 exactly 0.5: not above
        ("12 June 1843", "12 June 1848", "reader_disagrees"),  # F1 0.67, but other numbers
        ("in 1843", "18.43", "reader_disagrees"),
        ("in 1843", "1,843", None),
        ("12,000", "12000 people", None),
        ("1843", "not in the passage", "reader_cannot_answer"),
        ("1843", "", "reader_cannot_answer"),
    ],
)
def test_agreement_decides_by_f1_containment_or_fuzzy_ratio(proposed, said, code):
    found = agreement(proposed, said)
    assert (found.reason.code if found.reason else None) == code, found


def test_unanswerable_pairs_agree_when_the_reader_cannot_answer():
    assert agreement("The documents do not say.", "not in the passage", refusal=True).reason is None
    assert (
        agreement("The documents do not say.", "1843", refusal=True).reason.code
        == "reader_answered"
    )


# --- in generation -------------------------------------------------------------------------------


def test_an_agreeing_reader_keeps_pairs_with_one_batched_call_per_task(fake, tmp_path):
    fake.responder = reader(true_answer)
    s = run(tmp_path / "g", n=6, verify="roundtrip")
    assert s.kept == 6 and s.rejected == 0 and s.verify == "roundtrip"
    reads = reader_calls(fake)
    gen_calls = len(fake.calls) - len(reads)
    assert len(reads) == gen_calls == 2 == s.reader_calls  # one reader request per generation call
    assert all(len(questions_of(c["messages"])) == 3 for c in reads)
    # the reader never sees the proposed answers
    kept = rows(tmp_path / "g" / "qa.jsonl")
    for c in reads:
        assert not any(f'"{p["answer"]}"' in c["messages"][-1]["content"] for p in kept)
    assert all(p["metadata"]["reader_answer"] for p in kept)
    assert s.calls_per_kept_pair == pytest.approx(4 / 6, abs=1e-3)  # 2 generation + 2 reader calls


def test_a_disagreeing_reader_rejects_with_reader_disagrees(fake, tmp_path):
    fake.responder = reader(lambda q, p: "Ernest Shackleton")
    s = run(tmp_path / "g", n=3, verify="roundtrip", max_calls=1)
    assert s.kept == 0 and s.rejected_by_reason == {"reader_disagrees": 3}
    rej = rows(tmp_path / "g" / "rejected.jsonl")
    assert {r["stage"] for r in rej} == {"verify"}
    assert all(r["pair"]["metadata"]["reader_answer"] == "Ernest Shackleton" for r in rej)


def test_a_reader_that_cannot_answer_rejects_with_reader_cannot_answer(fake, tmp_path):
    fake.responder = reader(lambda q, p: "not in the passage")
    s = run(tmp_path / "g", n=3, verify="roundtrip", max_calls=1)
    assert s.kept == 0 and s.rejected_by_reason == {"reader_cannot_answer": 3}


def test_reader_calls_are_cached(fake, tmp_path):
    fake.responder = reader(true_answer)
    cache = tmp_path / "llm.sqlite"
    first = run(tmp_path / "a", n=6, verify="roundtrip", cache=cache)
    again = run(tmp_path / "b", n=6, verify="roundtrip", cache=cache)  # new folder, same cache
    assert first.llm_calls == 4
    assert (
        again.llm_calls == 0
        and again.cached_calls == 4
        and again.reader_calls == 2
        and again.kept == 6
    )


def test_a_rerun_of_written_pairs_makes_no_reader_call(fake, tmp_path):
    fake.responder = reader(true_answer)
    run(tmp_path / "g", n=3, verify="roundtrip")
    before = len(reader_calls(fake))
    s = run(tmp_path / "g", n=6, verify="roundtrip")  # replays call 1 (written), asks a new one
    assert s.kept == 6 and len(reader_calls(fake)) - before == 1


def test_a_malformed_reader_reply_is_repaired_once(fake, tmp_path):
    good = reader(true_answer)
    replies = iter(["I think the answers are obvious."])

    def respond(messages):
        if is_reader(messages) and len(messages) == 2:
            return next(replies, None) or good(messages)
        return good(messages) if not is_reader(messages) else good(messages[:2])

    fake.responder = respond
    s = run(tmp_path / "g", n=3, verify="roundtrip", max_calls=1)
    assert s.kept == 3 and s.reader_calls == 2 and s.unverified == 0


def test_an_unreadable_reader_keeps_pairs_unverified(fake, tmp_path):
    fake.responder = lambda m: "no idea" if is_reader(m) else quoting_responder(m)
    s = run(tmp_path / "g", n=3, verify="roundtrip", max_calls=1)
    assert s.kept == 3 and s.unverified == 3 and s.reader_calls == 2  # the request and one repair
    kept = rows(tmp_path / "g" / "qa.jsonl")
    assert all("reader_unavailable" in {r["code"] for r in p["verdict"]["reasons"]} for p in kept)
    assert all(p["metadata"]["reader_answer"] is None for p in kept)


def test_a_reader_that_skips_a_question_leaves_that_pair_unverified(fake, tmp_path):
    def respond(messages):
        if not is_reader(messages):
            return quoting_responder(messages)
        qs = questions_of(messages)
        return json.dumps(
            {"answers": [{"n": 1, "answer": true_answer(qs[0], passages_of(messages))}]}
        )

    fake.responder = respond
    s = run(tmp_path / "g", n=3, verify="roundtrip", max_calls=1)
    assert s.kept == 3 and s.unverified == 2


def test_a_failed_reader_call_leaves_the_pairs_for_a_rerun(fake, tmp_path):
    fake.responder = reader(true_answer)
    fake.queue_reply(quoting_responder, server_error())  # generation answers, the reader fails
    s = run(tmp_path / "g", n=3, verify="roundtrip", max_calls=1, max_retries=0)
    assert s.kept == 0 and s.failed_calls == 1 and not rows(tmp_path / "g" / "qa.jsonl")
    again = run(tmp_path / "g", n=3, verify="roundtrip", max_calls=1, max_retries=0)
    assert again.kept == 3 and again.llm_calls == 1  # generation from the cache, the reader anew


def test_verify_off_makes_no_reader_calls(fake, tmp_path):
    fake.responder = reader(lambda q, p: "wrong")
    s = run(tmp_path / "g", n=3)
    assert s.kept == 3 and s.verify == "off" and s.reader_calls == 0 and not reader_calls(fake)


def test_unknown_verifier_and_judge_without_the_builtin_checker_are_config_errors(fake, tmp_path):
    with pytest.raises(ConfigError, match="verify must be one of"):
        run(tmp_path / "g", n=3, verify="both")
    with pytest.raises(ConfigError, match="needs the built-in checker"):
        run(tmp_path / "g", n=3, verify="judge")


class AsyncJudge:
    """A judge LLM with only an async path that can overlap; a blocking call is a failure."""

    def __init__(self) -> None:
        self.active = 0
        self.max_active = 0
        self.calls = 0

    def complete(self, *a, **kw):
        raise AssertionError("the judge blocked the event loop")

    async def acomplete(self, messages, **kw):
        self.calls += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        await asyncio.sleep(0.05)
        self.active -= 1
        from grounded.llm import Completion

        return Completion(json.dumps({"claims": [{"claim": "c", "verdict": "supported"}]}), "judge")


@pytest.mark.slow
def test_verify_judge_awaits_the_judge_so_calls_overlap(fake, tmp_path):
    from grounded.checker import default_checker

    judge = AsyncJudge()
    checker = default_checker(judge=judge, judge_mode="all", semantic="off")
    s = run(tmp_path / "g", n=9, verify="judge", checker=checker, concurrency=3)
    assert s.verify == "judge" and judge.calls >= 9  # judge_mode all: every checked pair
    assert judge.max_active >= 2  # judged pairs of different calls in flight together


@pytest.mark.slow
def test_verify_judge_uses_the_generation_model_when_the_checker_has_no_judge(fake, tmp_path):
    from grounded.checker import default_checker
    from grounded.checker.judge import JUDGE_SYSTEM

    fake.responder = lambda m: (
        json.dumps({"claims": [{"claim": "c", "verdict": "supported"}]})
        if m[0]["content"] == JUDGE_SYSTEM
        else quoting_responder(m)
    )
    checker = default_checker(judge_mode="all", semantic="off")
    s = run(tmp_path / "g", n=3, verify="judge", checker=checker, max_calls=1)
    judged = [c for c in fake.calls if c["messages"][0]["content"] == JUDGE_SYSTEM]
    assert (
        judged and s.llm_calls == 1 + len(judged) and checker.judge is None
    )  # caller's checker untouched


# --- CLI -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_generate_verify_roundtrip(fake, tmp_path, real_index):
    fake.responder = reader(lambda q, p: "Ernest Shackleton")
    args = [
        "generate",
        "--index",
        str(real_index[0]),
        "--out",
        str(tmp_path / "g"),
        "-n",
        "3",
        "--model",
        "fake/test-model",
        "--max-calls",
        "2",
        "--verify",
        "roundtrip",
    ]
    res = CliRunner().invoke(main, [*args, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["verify"] == "roundtrip" and data["reader_calls"] >= 1
    assert data["rejected_by_reason"].get("reader_disagrees", 0) >= 1 and data["kept"] == 0
    human = CliRunner().invoke(main, [*args[:4], str(tmp_path / "h"), *args[5:]])
    assert "verify roundtrip:" in human.output and "reader_disagrees" in human.output
    off = CliRunner().invoke(main, [*args[:4], str(tmp_path / "o"), *args[5:-2]])
    assert "verify: off (--verify roundtrip" in off.output


def test_cli_run_refuses_a_judge_with_another_verifier(tmp_path):
    (tmp_path / "a.txt").write_text("The bridge was built in 1843.", encoding="utf-8")
    res = CliRunner().invoke(
        main,
        [
            "run",
            str(tmp_path / "a.txt"),
            "--out",
            str(tmp_path / "o"),
            "--judge",
            "fake/test-model",
            "--verify",
            "roundtrip",
        ],
    )
    assert res.exit_code == 2 and "--judge goes with --verify judge" in res.output
    assert not (tmp_path / "o" / "index").exists()  # refused before any work
