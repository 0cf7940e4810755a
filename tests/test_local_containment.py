"""A crash of the local model's worker process is contained: one-line error, exit 5, cache kept."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from grounded.cli import main
from grounded.errors import LocalModelCrashed
from grounded.local_llm import LocalLLM, describe_exit

TESTS = Path(__file__).parent
WORKER = [sys.executable, str(TESTS / "fake_local_worker.py")]
DOCS = TESTS / "data" / "pipeline" / "docs"
PROMPT = [
    {
        "role": "user",
        "content": 'Write 1 question.\n<passage n="1">\nThe tower is made of granite from Aberdeen.\n</passage>',
    }
]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    import os

    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"not used by the fake worker")
    env = {
        **os.environ,
        "GROUNDED_LOCAL_WORKER": " ".join(WORKER),
        "GROUNDED_LOCAL_GGUF": str(gguf),
        "GROUNDED_MODEL": "grounded-local/smollm2",
        "PYTHONPATH": str(TESTS),
    }
    env.pop("OPENAI_API_KEY", None)
    env.pop("ANTHROPIC_API_KEY", None)
    return {**env, **extra}


def test_describe_exit_names_the_signal():
    assert describe_exit(-11) == "was killed by SIGSEGV"
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(None) == "stopped answering"


def test_worker_crash_raises_once_and_then_every_time(tmp_path, monkeypatch):
    for key, value in _env(tmp_path, FAKE_WORKER_CRASH_AFTER="1").items():
        monkeypatch.setenv(key, value)
    llm = LocalLLM(command=WORKER)
    try:
        first = llm.chat("smollm2", PROMPT, {"max_tokens": 50})
        assert "granite" in first["choices"][0]["message"]["content"]
        with pytest.raises(LocalModelCrashed) as crash:
            llm.chat("smollm2", PROMPT, {"max_tokens": 50})
        message = str(crash.value)
        assert "SIGSEGV" in message and "about to crash" in message
        assert "rerun" in crash.value.hint and "GGML_NATIVE=OFF" in crash.value.hint
        # the run must stop: later calls fail at once instead of restarting a crashing build
        with pytest.raises(LocalModelCrashed):
            llm.chat("smollm2", PROMPT, {"max_tokens": 50})
    finally:
        llm.close()


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    from grounded.ingestion import ingest

    root = tmp_path_factory.mktemp("containment")
    ingest([DOCS], index=root / "index", chunk_tokens=64, overlap_tokens=0)
    return root / "index"


def test_generate_stops_with_exit_5_on_a_crash_and_a_rerun_continues(
    tmp_path, index_dir, monkeypatch
):
    for key, value in _env(tmp_path, FAKE_WORKER_CRASH_AFTER="2").items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "out"
    args = [
        "generate",
        "--index",
        str(index_dir),
        "--out",
        str(out),
        "-n",
        "6",
        "--pairs-per-call",
        "1",
        "--max-retries",
        "2",
    ]
    crashed = CliRunner().invoke(main, args)
    assert crashed.exit_code == 5, crashed.output
    errors = [line for line in crashed.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "SIGSEGV" in errors[0] and "rerun" in errors[0], crashed.output
    with sqlite3.connect(out / "cache" / "llm.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 2

    monkeypatch.delenv("FAKE_WORKER_CRASH_AFTER")
    healthy = CliRunner().invoke(main, [*args, "--json"])
    assert healthy.exit_code == 0, healthy.output
    summary = json.loads(healthy.output[healthy.output.index("{") :])
    assert summary["cached_calls"] >= 2  # the two answers paid before the crash are not asked again
    assert summary["kept"] >= 1
