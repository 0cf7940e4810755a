"""grounded.run and `grounded run`: documents to a checked, deduplicated set with a report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import PIPELINE_DOCS, FakeLLM, pipeline_responder, register_fake

import grounded
from grounded.cli import main
from grounded.jsonl import read_jsonl

DOCS = PIPELINE_DOCS
responder = pipeline_responder


@pytest.fixture
def fake():
    f = FakeLLM(responder=responder)
    return f, register_fake(f)


def run(out: Path, model: str, **kw):
    kw.setdefault("n", 6)
    return grounded.run([DOCS], out=out, model=model, chunk_tokens=64, overlap_tokens=0, **kw)


def test_run_writes_checked_pairs_with_offsets_report_and_summary(tmp_path, fake):
    f, model = fake
    out = tmp_path / "out"
    summary = run(out, model)

    kept = list(read_jsonl(out / "qa.jsonl"))
    rejected = list(read_jsonl(out / "rejected.jsonl"))
    assert summary.kept == len(kept) >= 4
    assert summary.rejected == len(rejected) >= 1
    assert summary.rejected_by_reason.get("quote_not_found", 0) >= 1
    assert all(r["reasons"] for r in rejected)
    assert summary.llm_calls == len(f.calls) >= 1

    texts = {d.id: d.text for d in grounded.load([DOCS])}
    for row in kept:
        pair = grounded.QAPair.from_dict(row)
        assert pair.verdict is not None and pair.verdict.supported
        assert pair.provenance.model == model and pair.provenance.prompt_hash
        assert pair.evidence
        for ev in pair.evidence:
            assert texts[ev.doc_id][ev.start : ev.end] == ev.text

    data = json.loads((out / "summary.json").read_text())
    assert data["kept"] == summary.kept and data["report"].endswith("report.html")
    assert data["coverage"]["documents_total"] == 2
    html = (out / "report.html").read_text()
    assert "Eddystone" in html and "quote_not_found" in html


def test_rerun_makes_no_new_calls_and_keeps_the_same_pairs(tmp_path, fake):
    f, model = fake
    out = tmp_path / "out"
    first = run(out, model)
    ids = [r["id"] for r in read_jsonl(out / "qa.jsonl")]
    calls = len(f.calls)

    second = run(out, model)
    assert len(f.calls) == calls  # nothing paid for twice
    assert second.llm_calls == 0
    assert [r["id"] for r in read_jsonl(out / "qa.jsonl")] == ids
    assert second.kept == first.kept
    assert second.ingest["unchanged"] == 2


def test_cli_run_json_summary(tmp_path, fake):
    _, model = fake
    out = tmp_path / "cli"
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
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert {"kept", "rejected", "report"} <= set(summary)
    assert summary["kept"] >= 1 and Path(summary["report"]).is_file()


def test_cli_run_uses_settings_file(tmp_path, fake, monkeypatch):
    _, model = fake
    monkeypatch.chdir(tmp_path)
    (tmp_path / "grounded.toml").write_text(f'model = "{model}"\n[run]\nn = 3\nchunk_tokens = 64\n')
    result = CliRunner().invoke(main, ["run", str(DOCS), "--out", "o", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["generate"]["model"] == model


def test_cli_run_says_kept_of_requested_and_why_it_stopped(tmp_path, fake):
    _, model = fake
    out = tmp_path / "human"
    args = [
        "run",
        str(DOCS),
        "--out",
        str(out),
        "--model",
        model,
        "-n",
        "50",
        "--chunk-tokens",
        "64",
        "--max-calls",
        "2",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    first = next(line for line in result.output.splitlines() if line.startswith("kept "))
    assert " of 50 requested" in first, result.output
    assert "stopped: max_calls" in first and "raise --max-calls" in first
