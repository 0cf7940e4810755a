"""generate(): -n is kept pairs (rounds, budget, stop reasons), salvaged replies, refusals, costs."""

from __future__ import annotations

import json
from pathlib import Path

import litellm
import pytest
from click.testing import CliRunner
from fakes import FakeChecker, FakeIndex, FakeLLM, quoting_responder, register_fake, server_error

from grounded.cli import main
from grounded.errors import LLMFatalError
from grounded.generation import default_max_calls, generate
from grounded.jsonl import read_jsonl
from grounded.prompting import parse_reply

CORPUS = Path(__file__).parent / "data" / "generate" / "corpus"
TEA = (CORPUS / "tea.txt").read_text(encoding="utf-8").split("\n\n")[1]


def rows(path: Path) -> list[dict]:
    return list(read_jsonl(path)) if path.exists() else []


def stations(docs: int = 6, per_doc: int = 6) -> FakeIndex:
    """An index of docs x per_doc chunks, three quotable sentences each."""
    texts = {}
    for d in range(docs):
        texts[f"line{d}"] = [
            f"Station {d}-{i} was opened in {1900 + 10 * d + i} by the engineer Ada Marsh. "
            f"It carries {i + 2} tracks across the valley of the river Wend{d}{i}. "
            f"The roof of station {d}-{i} is made of green copper plates."
            for i in range(per_doc)
        ]
    return FakeIndex.from_texts(texts)


def keeping(good: int):
    """A model whose replies quote the passage in their first `good` pairs and invent the rest."""

    def respond(messages):
        pairs = json.loads(quoting_responder(messages))["pairs"]
        for i, p in enumerate(pairs):
            if i >= good:
                p["quote"] = f"Bananas number {i} grow on the moon in winter."
        return json.dumps({"pairs": pairs})

    return respond


def failing(messages):
    raise server_error()


def run(out, model, **kw):
    kw.setdefault("index", stations())
    kw.setdefault("checker", FakeChecker())
    return generate(out=out, model=model, **kw)


def pair_json(quote: str, answer: str, question: str) -> dict:
    return {"quote": quote, "answer": answer, "question": question}


# --- -n is the number of kept pairs ---------------------------------------------------------------


def test_rounds_go_on_until_n_pairs_are_kept_and_say_why_they_stopped(tmp_path):
    fake = FakeLLM(responder=keeping(1))  # one pair in three survives
    s = run(tmp_path, register_fake(fake), n=9, pairs_per_call=3)
    assert len(rows(tmp_path / "qa.jsonl")) == 9  # was 7: three rounds, then it gave up
    assert s.stopped == "reached n" and s.kept == 9 and s.requested == 9
    assert s.candidates == 3 * s.calls and s.rejected_by_reason == {"quote_not_found": s.rejected}
    assert s.calls == len(fake.calls) <= default_max_calls(9, 3)
    assert json.loads((tmp_path / "summary.json").read_text())["stopped"] == "reached n"


def test_the_call_budget_stops_a_model_that_keeps_nothing(tmp_path):
    fake = FakeLLM(responder=keeping(0))
    s = run(tmp_path / "a", register_fake(fake), n=5, pairs_per_call=1)
    assert len(fake.calls) == default_max_calls(5, 1) == 20
    assert s.stopped == "max_calls" and s.kept == 0 and s.calls == s.max_calls == 20
    fake.calls.clear()
    s = run(tmp_path / "b", register_fake(fake), n=5, pairs_per_call=1, max_calls=3)
    assert s.stopped == "max_calls" and len(fake.calls) == 3


def test_no_more_rounds_when_every_call_of_a_round_fails(tmp_path):
    fake = FakeLLM(responder=failing)
    s = run(tmp_path, register_fake(fake), n=10, pairs_per_call=1, max_retries=0)
    assert len(fake.calls) == 10  # was 30: two more rounds of calls bound to fail
    assert s.stopped == "calls failing" and s.failed_calls == 10


def test_passages_exhausted(tmp_path):
    fake = FakeLLM(responder=keeping(0))
    s = run(tmp_path, register_fake(fake), n=4, pairs_per_call=1, index=stations(1, 3))
    assert len(fake.calls) == 3 and s.stopped == "passages exhausted"


def test_one_invocation_never_writes_more_than_n(tmp_path):
    fake = FakeLLM()
    s = run(tmp_path, register_fake(fake), n=4, pairs_per_call=3)  # two calls: six pairs
    assert s.kept == 4 and s.surplus == 2 and len(rows(tmp_path / "qa.jsonl")) == 4


def test_a_rerun_after_a_failed_call_does_not_overshoot_n(tmp_path):
    fake = FakeLLM([server_error()])  # the first call fails, the others answer
    model = register_fake(fake)
    first = run(tmp_path, model, n=6, pairs_per_call=3, max_retries=0, concurrency=1)
    assert first.failed_calls == 1 and first.kept == 6
    again = run(tmp_path, model, n=6, pairs_per_call=3, max_retries=0, concurrency=1)
    assert len(rows(tmp_path / "qa.jsonl")) == 6  # was 9: the retried call's pairs came on top
    assert again.kept == 6 and again.stopped == "reached n" and again.llm_calls == 0
    more = run(tmp_path, model, n=9, pairs_per_call=3, max_retries=0, concurrency=1)
    assert more.kept == 9 and more.already_written == 6 and len(rows(tmp_path / "qa.jsonl")) == 9


def test_a_fatal_error_stops_at_once_and_keeps_what_was_written(tmp_path):
    def fatal(messages):
        raise litellm.AuthenticationError(message="401 bad key", llm_provider="fake", model="m")

    fake = FakeLLM(
        [
            json.dumps(
                {"pairs": [pair_json(TEA.split(". ")[0] + ".", "green tea", "What is it about?")]}
            )
        ],
        responder=fatal,
    )
    model = register_fake(fake)
    with pytest.raises(LLMFatalError):
        run(
            tmp_path,
            model,
            n=6,
            pairs_per_call=1,
            concurrency=1,
            max_retries=3,
            index=FakeIndex.from_texts(
                {"tea": [TEA] * 1, "t2": [TEA + " More."], "t3": [TEA + " Again."]}
            ),
        )
    assert len(fake.calls) == 2  # no retry of a 401, no further calls
    assert len(rows(tmp_path / "qa.jsonl")) == 1


# --- replies that are partly wrong keep their good part -------------------------------------------


def test_a_truncated_reply_keeps_its_complete_pairs_and_asks_for_the_rest(tmp_path):
    text = "The roof of station 0-0 is made of green copper plates."
    p1 = pair_json(
        "Station 0-0 was opened in 1900 by the engineer Ada Marsh.",
        "1900",
        "When did station 0-0 open?",
    )
    p2 = pair_json(text, "green copper plates", "What is the roof of station 0-0 made of?")
    cut = json.dumps({"pairs": [p1, p2]})[:-2] + ', {"quote": "It carries 2 tracks across'
    p3 = pair_json(
        "It carries 2 tracks across the valley of the river Wend00.",
        "2",
        "How many tracks does it carry?",
    )
    fake = FakeLLM([cut, json.dumps({"pairs": [p3]})], responder=None)
    s = run(tmp_path, register_fake(fake), n=3, pairs_per_call=3, index=stations(1, 1))
    assert s.kept == 3 and len(fake.calls) == 2
    assert "cut off" in fake.calls[1]["messages"][-1]["content"]
    assert "1 new pair" in fake.calls[1]["messages"][-1]["content"]
    rej = rows(tmp_path / "rejected.jsonl")
    assert [r["reasons"][0]["code"] for r in rej] == ["truncated_reply"]
    assert rej[0]["raw"].startswith('{"quote": "It carries 2 tracks')


def test_one_pair_without_quote_does_not_cost_the_others(tmp_path):
    p1 = pair_json(
        "Station 0-0 was opened in 1900 by the engineer Ada Marsh.",
        "1900",
        "When did station 0-0 open?",
    )
    bad = {"answer": "copper", "question": "What is the roof made of?"}
    p3 = pair_json(
        "The roof of station 0-0 is made of green copper plates.",
        "green copper plates",
        "What is the roof of station 0-0 made of?",
    )
    fake = FakeLLM([json.dumps({"pairs": [p1, bad, p3]}), "no idea"], responder=None)
    s = run(tmp_path, register_fake(fake), n=3, pairs_per_call=3, index=stations(1, 1))
    assert s.kept == 2 and s.rejected_by_reason == {"invalid_pair": 1}
    rej = rows(tmp_path / "rejected.jsonl")[0]
    assert json.loads(rej["raw"]) == bad and "quote" in rej["reasons"][0]["message"]


def test_a_rerun_asks_again_for_a_cached_reply_that_yielded_nothing(tmp_path):
    fake = FakeLLM(["Here are some questions.", "Sorry, still prose."])
    model = register_fake(fake)
    index = FakeIndex.from_texts({"tea": [TEA]})
    first = run(tmp_path, model, n=1, pairs_per_call=1, index=index)
    assert first.kept == 0 and len(fake.calls) == 2
    again = run(tmp_path, model, n=1, pairs_per_call=1, index=index)
    assert again.kept == 1 and len(fake.calls) == 3  # was 0 kept: the cached failure replayed
    assert first.invalid_replies == 1 and again.retried_invalid == 1 and again.invalid_replies == 0
    assert "Attempt 2" in fake.calls[2]["messages"][-1]["content"]
    assert [r["reasons"][0]["code"] for r in rows(tmp_path / "rejected.jsonl")] == ["invalid_reply"]


def test_no_retry_invalid_replays_the_cached_failure(tmp_path):
    fake = FakeLLM(["Here are some questions.", "Sorry, still prose."])
    model = register_fake(fake)
    index = FakeIndex.from_texts({"tea": [TEA]})
    run(tmp_path, model, n=1, pairs_per_call=1, index=index)
    off = run(tmp_path, model, n=1, pairs_per_call=1, index=index, retry_invalid=False)
    assert (
        off.kept == 0 and len(fake.calls) == 2 and off.llm_calls == 0 and off.invalid_replies == 1
    )


def test_parse_reply_validates_each_pair():
    good = pair_json("A quote here.", "x", "What is x?")
    parsed = parse_reply(
        "Sure:\n```json\n"
        + json.dumps({"pairs": [good, {"question": "No quote?"}, "junk"]})
        + "\n```"
    )
    assert len(parsed.pairs) == 1 and [d[0] for d in parsed.dropped] == [
        "invalid_pair",
        "invalid_pair",
    ]
    assert not parse_reply(json.dumps(good)).dropped  # a bare pair is still fine
    assert parse_reply("no json").error and parse_reply('{"pairs": []}').error
    cut = parse_reply('{"pairs": [' + json.dumps(good) + ', {"quo')
    assert cut.truncated and len(cut.pairs) == 1 and cut.dropped[0][0] == "truncated_reply"


# --- unanswerable pairs keep the model's answer ----------------------------------------------------


def test_unanswerable_keeps_the_models_answer_and_rejects_a_real_one(tmp_path):
    quote = TEA.split(". ")[0] + "."
    reply = json.dumps(
        {
            "pairs": [
                pair_json(
                    quote,
                    "The documents do not say who first grew it.",
                    "Who first grew green tea in Japan?",
                ),
                pair_json(
                    quote, "steamed or pan-fired", "How are green tea leaves treated after picking?"
                ),
            ]
        }
    )
    fake = FakeLLM([reply], responder=None)
    s = run(
        tmp_path,
        register_fake(fake),
        n=2,
        pairs_per_call=2,
        prompt="unanswerable",
        index=FakeIndex.from_texts({"tea": [TEA]}),
    )
    kept = rows(tmp_path / "qa.jsonl")
    assert [p["answer"] for p in kept] == ["The documents do not say who first grew it."]
    rej = rows(tmp_path / "rejected.jsonl")
    assert s.rejected_by_reason == {"not_a_refusal": 1}
    assert (
        rej[0]["pair"]["answer"] == "steamed or pan-fired"
    )  # was overwritten with a refusal and kept


# --- costs ---------------------------------------------------------------------------------------


@pytest.fixture
def priced():
    litellm.register_model(
        {
            "fake/priced": {
                "input_cost_per_token": 1e-5,
                "output_cost_per_token": 3e-5,
                "litellm_provider": "fake",
                "mode": "chat",
            }
        }
    )
    fake = FakeLLM()
    register_fake(fake)
    return fake


def test_each_row_carries_its_share_of_the_call_cost(tmp_path, priced):
    s = run(tmp_path, "fake/priced", n=6, pairs_per_call=3)
    pairs = rows(tmp_path / "qa.jsonl")
    assert s.cost > 0 and sum(p["provenance"]["cost"] for p in pairs) == pytest.approx(
        s.cost
    )  # was 3x
    assert s.cost_total == pytest.approx(s.cost)
    for p in pairs:
        assert p["provenance"]["call_cost"] == pytest.approx(3 * p["provenance"]["cost"])
    assert sum(p["provenance"]["completion_tokens"] for p in pairs) == s.completion_tokens


def test_a_resumed_run_reports_this_runs_spend_and_the_total(tmp_path, priced):
    first = run(tmp_path, "fake/priced", n=3, pairs_per_call=3)
    more = run(tmp_path, "fake/priced", n=6, pairs_per_call=3)
    same = run(tmp_path, "fake/priced", n=6, pairs_per_call=3)
    saved = json.loads((tmp_path / "summary.json").read_text())  # was missing: report showed $0
    assert same.cost == 0 and saved["cost_total"] == pytest.approx(first.cost + more.cost)
    assert first.cost > 0
    assert more.cost > 0 and more.cost_total == pytest.approx(first.cost + more.cost)


# --- at the CLI ----------------------------------------------------------------------------------


@pytest.fixture
def index_dir(real_index):
    return real_index[0]


def cli(index_dir, out, *args):
    base = [
        "generate",
        "--index",
        str(index_dir),
        "--out",
        str(out),
        "--model",
        "fake/test-model",
        "--no-check",
    ]
    return CliRunner().invoke(main, base + list(args))


@pytest.mark.slow
def test_cli_says_what_was_kept_of_what_was_asked_and_why_it_stopped(tmp_path, index_dir):
    fake = FakeLLM(responder=keeping(0))
    register_fake(fake)
    res = cli(index_dir, tmp_path / "a", "-n", "5", "--pairs-per-call", "1", "--max-calls", "3")
    assert res.exit_code == 0, res.output
    assert "kept 0 of 5 requested (3 candidates, 3 rejected)" in res.output
    assert "stopped: max_calls" in res.output and "raise --max-calls" in res.output
    assert len(fake.calls) == 3
    register_fake(FakeLLM(responder=failing))
    res = cli(index_dir, tmp_path / "b", "-n", "4", "--pairs-per-call", "1", "--max-retries", "0")
    assert res.exit_code == 10 and "stopped: calls failing" in res.output


@pytest.mark.slow
def test_cli_rerun_after_a_failed_call_keeps_exactly_n(tmp_path, index_dir):
    register_fake(FakeLLM([server_error()]))
    args = [
        "-n",
        "4",
        "--pairs-per-call",
        "2",
        "--max-retries",
        "0",
        "--concurrency",
        "1",
        "--json",
    ]
    first = cli(index_dir, tmp_path, *args)
    assert first.exit_code == 10 and json.loads(first.output)["kept"] == 4
    again = cli(index_dir, tmp_path, *args)
    assert again.exit_code == 0 and json.loads(again.output)["stopped"] == "reached n"
    assert len(rows(tmp_path / "qa.jsonl")) == 4


@pytest.mark.slow
def test_cli_tells_how_to_retry_unusable_replies(tmp_path, index_dir):
    register_fake(FakeLLM(["Some prose.", "More prose."]))
    res = cli(index_dir, tmp_path, "-n", "1", "--pairs-per-call", "1")
    assert res.exit_code == 0, res.output
    assert (
        "1 replies yielded no usable pair" in res.output and "rerun the same command" in res.output
    )


@pytest.mark.slow
def test_cli_stops_at_once_on_a_refused_key(tmp_path, index_dir):
    def fatal(messages):
        raise litellm.AuthenticationError(message="401 bad key", llm_provider="fake", model="m")

    fake = FakeLLM(responder=fatal)
    register_fake(fake)
    res = cli(index_dir, tmp_path, "-n", "6", "--pairs-per-call", "1", "--concurrency", "1")
    assert res.exit_code == 5 and len(fake.calls) == 1
    assert res.output.count("error:") == 1 and "stopping" in res.output
