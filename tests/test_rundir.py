"""One of each: the run folder and its files, atomic writes, the JSONL reader, one LLM cache place."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import FakeLLM, register_fake

from grounded.cli import main
from grounded.jsonl import read_jsonl, write_jsonl
from grounded.llm import CallCache, Completion
from grounded.rundir import RunFolder, atomic_write, atomic_write_text


def test_run_folder_knows_its_files(tmp_path: Path) -> None:
    run = RunFolder(tmp_path)
    assert (run.qa.name, run.rejected.name, run.summary.name, run.report.name) == (
        "qa.jsonl",
        "rejected.jsonl",
        "summary.json",
        "report.html",
    )
    assert run.index == tmp_path / "index" and run.llm_cache == tmp_path / "cache" / "llm.sqlite"
    assert RunFolder.of(run.qa) == run
    assert run.read_summary() == {} and run.index_path() is None
    run.summary.write_text("not json", encoding="utf-8")
    assert run.read_summary() == {}


def test_index_path_is_the_recorded_one_else_the_default_folder(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run.path.mkdir()
    run.summary.write_text(json.dumps({"files": {"index": str(elsewhere)}}), encoding="utf-8")
    assert run.index_path() == elsewhere
    run.summary.write_text(
        json.dumps({"ingest": {"index": str(tmp_path / "gone")}}), encoding="utf-8"
    )
    assert run.index_path() is None
    run.index.mkdir()
    assert run.index_path() == run.index  # a run killed before summary.json still has its index


def test_atomic_write_leaves_the_old_file_on_error_and_no_temp_behind(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_write(path) as fh:
        fh.write("half of the new")
        raise RuntimeError("killed mid-write")
    assert path.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_atomic_write_gives_the_usual_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    path = atomic_write_text(tmp_path / "qa.jsonl", "x")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_jsonl_reader_names_file_and_line_of_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_bytes(b'{"question": "a?", "answer": "a"}\n\n{"question": "b?", "answer": "\xe9"}\n')
    res = CliRunner().invoke(
        main, ["dedup", str(path), "--out", str(tmp_path / "o"), "--embedder", "none"]
    )
    assert res.exit_code == 1
    assert f"{path}:3: not UTF-8 text" in res.output and "internal error" not in res.output


def test_jsonl_reader_can_skip_bad_rows_saying_where(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n[1, 2]\n{"a": 2}\n{"a": 3', encoding="utf-8")  # last: half-written
    with caplog.at_level(logging.WARNING, logger="grounded.jsonl"):
        assert list(read_jsonl(path, skip_bad=True)) == [{"a": 1}, {"a": 2}]
    assert f"{path}:2: skipped, expected a JSON object, got list" in caplog.text


def test_write_jsonl_replaces_whole_files(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    assert write_jsonl(path, [{"a": 1}, {"a": 2}]) == 2
    assert write_jsonl(path, [{"a": 3}]) == 1
    assert list(read_jsonl(path)) == [{"a": 3}]


def test_calls_in_an_old_location_cache_are_copied_in_and_the_old_file_kept(tmp_path: Path) -> None:
    run = RunFolder(tmp_path)
    old = CallCache(tmp_path / ".cache" / "llm.sqlite")
    old.put("k1", Completion("reply one", "m", 3, 2, 0.5))
    old.close()
    new = run.open_llm_cache()
    hit = new.get("k1")
    assert hit is not None and hit.text == "reply one" and hit.cost == 0.5
    new.put("k2", Completion("reply two", "m"))
    new.close()
    assert run.llm_cache.is_file() and len(CallCache(tmp_path / ".cache" / "llm.sqlite")) == 1
    again = run.open_llm_cache()  # copying twice changes nothing
    assert len(again) == 2


@pytest.mark.slow
def test_generate_keeps_its_cache_in_the_one_place_and_still_uses_the_old_one(
    tmp_path: Path, real_index: tuple[Path, Path]
) -> None:
    fake = FakeLLM()
    model = register_fake(fake)
    first = tmp_path / "first"
    args = [
        "generate",
        "--index",
        str(real_index[0]),
        "-n",
        "2",
        "--model",
        model,
        "--no-check",
        "--json",
    ]
    res = CliRunner().invoke(main, [*args, "--out", str(first)])
    assert res.exit_code == 0, res.output
    calls = len(fake.calls)
    assert calls > 0 and RunFolder(first).llm_cache.is_file()
    assert not (first / ".cache").exists()
    # An output folder from before: its calls sit in OUT/.cache/llm.sqlite, no pairs written yet.
    second = tmp_path / "second"
    (second / ".cache").mkdir(parents=True)
    shutil.copy(RunFolder(first).llm_cache, second / ".cache" / "llm.sqlite")
    res = CliRunner().invoke(main, [*args, "--out", str(second)])
    assert res.exit_code == 0, res.output
    assert len(fake.calls) == calls, "a call paid for before was made again"
    assert json.loads(res.output)["cached_calls"] > 0
