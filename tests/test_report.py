"""The HTML report: sections present, text escaped, robust to missing files, renders in Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from grounded.commands.dataset import report as report_command
from grounded.eval.report import highlight, write_report
from grounded.types import Evidence, QAPair, Reason, Rejection, Verdict

DATA = Path(__file__).parent / "data" / "health"
ROOT = Path(__file__).parent.parent


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(DATA / "run", run)
    return run


def test_report_has_every_section(run_dir):
    path = write_report(run_dir, reference=DATA / "human-b.json", embedder=None)
    assert path == run_dir / "report.html"
    html = path.read_text(encoding="utf-8")
    for anchor in (
        "narrowing",
        "funnel",
        "coverage",
        "diversity",
        "question-types",
        "answer-lengths",
        "examples",
    ):
        assert f'id="{anchor}"' in html, anchor
    assert "Rejections by reason" in html and "low_support" in html and "invalid_json" in html
    assert "<svg" in html and "<mark>" in html and "Lighthouses" in html
    # Self-contained: nothing is fetched.
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert "No narrowing warning" in html


def test_report_shows_the_narrowing_banner(tmp_path):
    run = tmp_path / "collapsed"
    run.mkdir()
    shutil.copy(DATA / "collapsed.jsonl", run / "qa.jsonl")
    html = write_report(run, reference=DATA / "human-a.json", embedder=None).read_text(
        encoding="utf-8"
    )
    assert "Narrowing warning" in html and "distinct-2" in html
    assert "<tr class=fired>" in html


def test_report_escapes_text_from_pairs(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    context = "Alert: <script>alert(1)</script> is not code here & stays text."
    ev = Evidence(
        doc_id="d", chunk_id="d#0", start=7, end=33, text="<script>alert(1)</script>", score=1.0
    )
    pair = QAPair(
        id="x",
        question="What does <script>alert('q')</script> do?",
        answer="<b>nothing</b>",
        evidence=(ev,),
        doc_ids=("d",),
        contexts=(context,),
        verdict=Verdict(True, 0.9),
    )
    (run / "qa.jsonl").write_text(json.dumps(pair.to_dict()) + "\n", encoding="utf-8")
    rej = Rejection(
        stage="check", reasons=(Reason("low_support", "<img src=x onerror=alert(2)>"),), pair=pair
    )
    (run / "rejected.jsonl").write_text(json.dumps(rej.to_dict()) + "\n", encoding="utf-8")
    html = write_report(run, embedder=None).read_text(encoding="utf-8")
    assert "<script" not in html and "<img" not in html and "<b>nothing" not in html
    assert "&lt;script&gt;alert(&#x27;q&#x27;)&lt;/script&gt;" in html
    assert "<mark>&lt;script&gt;alert(1)&lt;/script&gt;</mark>" in html


def test_report_with_missing_files(tmp_path):
    run = tmp_path / "empty"
    run.mkdir()
    ingest = {
        "documents": 2,
        "chunks": 5,
        "skipped": [{"path": "scan<1>.pdf", "reason": "no text layer"}],
    }
    (run / "summary.json").write_text(json.dumps({"ingest": ingest}), encoding="utf-8")
    html = write_report(run, embedder=None).read_text(encoding="utf-8")
    assert 'id="funnel"' in html and "no kept pairs" in html and "cannot be measured" in html
    assert "1 input files skipped" in html and "scan&lt;1&gt;.pdf: no text layer" in html


def test_highlight_marks_and_cuts():
    text = "a" * 1000 + "NEEDLE" + "b" * 1000
    out = highlight(text, [(1000, 1006)], window=10)
    assert out == "…" + "a" * 10 + "<mark>NEEDLE</mark>" + "b" * 10 + "…"


def test_report_cli(run_dir):
    result = CliRunner().invoke(report_command, [str(run_dir), "--embedder", "none", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["report"] == str(run_dir / "report.html")
    bad = run_dir / "nothing"
    bad.mkdir()
    result = CliRunner().invoke(report_command, [str(bad), "--embedder", "none"])
    assert result.exit_code == 1 and "run directory" in result.output


@pytest.mark.skipif(
    not any(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")),
    reason="chromium is not installed",
)
def test_report_renders_in_headless_chromium(tmp_path):
    png = tmp_path / "report.png"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "render_report.py"), "--png", str(png)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000  # a blank page compresses to a few kB


def test_report_on_a_resumed_folder_shows_the_total_spend(tmp_path):
    run = tmp_path / "gen"
    run.mkdir()
    # a resumed generate: nothing new was paid, the folder's rows cost $0.42
    (run / "summary.json").write_text(
        json.dumps({"cost": 0.0, "cost_total": 0.42, "llm_calls": 0}), encoding="utf-8"
    )
    html = write_report(run, embedder=None).read_text(encoding="utf-8")
    assert "$0.4200" in html and "$0.0000" not in html
