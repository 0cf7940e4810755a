"""One stage shape: stages over one stream of records, drops counted once, resources opened once."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fakes import (
    PIPELINE_DOCS,
    FakeChecker,
    FakeLLM,
    pipeline_responder,
    register_fake,
)

import grounded
from grounded.cli import main
from grounded.jsonl import read_jsonl
from grounded.stages import CheckStage, Context, DedupStage, Ledger, split
from grounded.types import Candidate, Chunk, QAPair, Reason, Rejection, Verdict

DOCS = PIPELINE_DOCS
responder = pipeline_responder


@pytest.fixture
def model():
    return register_fake(FakeLLM(responder=responder))


def pair(question: str, answer: str = "x", score: float = 1.0) -> QAPair:
    return QAPair(
        id=QAPair.make_id(question, answer),
        question=question,
        answer=answer,
        verdict=Verdict(True, score),
    )


CHUNK = Chunk(id="c1", doc_id="d1", text="Some text.", start=0, end=10)


def test_check_stage_yields_kept_pairs_and_rejections_in_order_and_counts_each_drop_once():
    ctx = Context()
    stats = ctx.ledger
    cands = [Candidate(pair(q), (CHUNK,)) for q in ("One?", "REJECTME two?", "Three?")]
    out = list(CheckStage(FakeChecker(), batch_size=2).run(cands, ctx))

    assert [type(r).__name__ for r in out] == ["QAPair", "Rejection", "QAPair"]
    assert isinstance(out[1], Rejection) and out[1].stage == "check" and out[1].pair is not None
    assert stats.stage("check").records_in == 3 and stats.stage("check").records_out == 2
    kept, rejected = split(out)
    assert [p.question for p in kept] == ["One?", "Three?"] and len(rejected) == 1
    assert stats.rejected_by_reason == {"low_support": 1}  # counted as it left the stage, once


def test_dedup_stage_passes_rejections_and_turns_duplicates_into_rejections():
    ctx = Context()
    stats = ctx.ledger
    earlier = {"stage": "generate", "reasons": [{"code": "quote_not_found"}], "pair": None}
    records = [pair("Who built it?", "Smeaton", 0.9), earlier, pair("who built it", "Smeaton", 0.5)]
    kept, rejected = split(DedupStage(embedder=None).run(records, ctx))

    assert [p.verdict.score for p in kept] == [0.9]
    assert (
        rejected[0] is earlier
        and isinstance(rejected[1], Rejection)
        and rejected[1].stage == "dedup"
    )
    assert stats.stages["dedup"].dropped_by_reason == {"duplicate": 1}
    # the generate stage's rejection passed through: counted where it was made, not here
    assert stats.rejected_by_reason == {"duplicate": 1}


def test_stats_rejected_by_reason_leaves_skipped_files_out():
    stats = Ledger()
    stats.drop("ingest", Rejection("ingest", (Reason("skipped", "empty"),)))
    stats.drop("check", Rejection("check", (Reason("low_support"),)))
    assert stats.rejected_by_reason == {"low_support": 1}
    assert stats.to_dict()["ingest"]["dropped_by_reason"] == {"skipped": 1}


def test_run_summary_has_every_stage_with_its_counts_and_the_reasons_match_rejected_jsonl(
    tmp_path, model
):
    out = tmp_path / "out"
    summary = grounded.run([DOCS], out=out, model=model, n=6, chunk_tokens=64, overlap_tokens=0)

    data = json.loads((out / "summary.json").read_text())
    assert list(data["stages"]) == ["ingest", "generate", "check", "dedup", "health", "report"]
    assert data["stages"]["ingest"]["records_in"] == 2
    rows = list(read_jsonl(out / "rejected.jsonl"))
    codes: dict[str, int] = {}
    for row in rows:
        for r in row["reasons"]:
            codes[r["code"]] = codes.get(r["code"], 0) + 1
    assert data["rejected_by_reason"] == codes == summary.rejected_by_reason
    assert data["stages"]["generate"]["dropped_by_reason"].get("quote_not_found", 0) >= 1


def test_run_with_the_fast_embedder_measures_dedup_and_health_with_it(tmp_path, model):
    out = tmp_path / "fast"
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(DOCS),
            "--out",
            str(out),
            "--model",
            model,
            "-n",
            "6",
            "--chunk-tokens",
            "64",
            "--overlap-tokens",
            "0",
            "--embedder",
            "fast",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["ingest"]["embedder"] == "fast"
    assert summary["health"]["similarity"]["embedder"] == "fast"


def test_run_takes_the_generate_options_no_check_and_retry_invalid(tmp_path, model):
    out = tmp_path / "nocheck"
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(DOCS),
            "--out",
            str(out),
            "--model",
            model,
            "-n",
            "4",
            "--chunk-tokens",
            "64",
            "--no-check",
            "--no-retry-invalid",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["generate"]["checked"] is False
    kept = list(read_jsonl(out / "qa.jsonl"))
    assert kept and all(r["verdict"]["reasons"][0]["code"] == "unchecked" for r in kept)


def test_a_run_opens_the_index_once_for_its_stages_and_closes_it(tmp_path, model, monkeypatch):
    from grounded import index as index_module

    opened, closed = [], []
    real_init, real_close = index_module.Index.__init__, index_module.Index.close

    def init(self, *a, **kw):
        opened.append(self)
        real_init(self, *a, **kw)

    def close(self):
        closed.append(self)
        real_close(self)

    monkeypatch.setattr(index_module.Index, "__init__", init)
    monkeypatch.setattr(index_module.Index, "close", close)
    grounded.run([DOCS], out=tmp_path / "o", model=model, n=4, chunk_tokens=64)

    # ingest, generate, health and the report (its source passages) share the run's index
    assert len(opened) == 1, opened
    assert opened[0] in closed


def test_check_stage_passes_earlier_rejections_through_in_their_place_and_counts_them_once():
    """`grounded check` feeds the stage a file's rows: unreadable ones are already rejections."""
    ctx = Context()
    unreadable = Rejection("check", (Reason("unreadable_row", "line 1"),))
    no_sources = Rejection("check", (Reason("no_sources"),))
    records = [
        unreadable,
        Candidate(pair("One?"), (CHUNK,)),
        no_sources,
        Candidate(pair("REJECTME two?"), (CHUNK,)),
        Candidate(pair("Three?"), (CHUNK,)),
    ]
    out = list(CheckStage(FakeChecker(), batch_size=2).run(records, ctx))

    assert out[0] is unreadable and out[2] is no_sources
    assert [getattr(r, "question", None) for r in out] == [None, "One?", None, None, "Three?"]
    assert isinstance(out[3], Rejection) and out[3].pair is not None
    assert ctx.ledger.rejected_by_reason == {"unreadable_row": 1, "no_sources": 1, "low_support": 1}
    assert ctx.ledger.stage("check").records_in == 3  # the candidates it judged
