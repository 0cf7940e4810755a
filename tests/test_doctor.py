"""`grounded doctor`: every check reports, and a crashing local runtime is named with its fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent
WORKER = f"{sys.executable} {TESTS / 'fake_local_worker.py'}"


def _doctor(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"fake")
    full = {
        **os.environ,
        "GROUNDED_LOCAL_WORKER": WORKER,
        "GROUNDED_LOCAL_GGUF": str(gguf),
        "PYTHONPATH": str(TESTS),
        "GROUNDED_CACHE_DIR": str(tmp_path / "cache"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "grounded", "doctor", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_doctor_json_lists_every_check(tmp_path):
    proc = _doctor(tmp_path, "--json")
    data = json.loads(proc.stdout)
    names = {f["name"] for f in data["findings"]}
    assert {
        "python",
        "cpu",
        "model parts",
        "model file",
        "small model",
        "local model runtime",
        "embeddings",
        "offline",
        "chroma",
        "disk",
    } <= names
    assert {"extra export", "extra server", "extra ray"} <= names
    runtime = next(f for f in data["findings"] if f["name"] == "local model runtime")
    assert runtime["status"] == "ok" and "worker process" in runtime["detail"], runtime
    assert "qwen2.5-coder-1.5b wrote" in runtime["detail"]  # the default model, not SmolLM2
    model_file = next(f for f in data["findings"] if f["name"] == "model file")
    assert model_file["status"] == "ok" and "GROUNDED_LOCAL_GGUF" in model_file["detail"]
    assert all(f["status"] in ("ok", "warn", "fail") for f in data["findings"])
    assert proc.returncode == (0 if data["ok"] else 1)


def test_doctor_names_a_crashing_runtime_and_the_portable_rebuild(tmp_path):
    proc = _doctor(tmp_path, FAKE_WORKER_CRASH_AFTER="0")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if "local model runtime" in ln)
    assert line.startswith("fail") and "SIGSEGV" in line
    assert "GGML_NATIVE=OFF" in proc.stdout


def test_doctor_warns_when_a_user_setting_would_download(tmp_path):
    proc = _doctor(tmp_path, "--json", "--no-local", HF_HUB_OFFLINE="0")
    offline = next(f for f in json.loads(proc.stdout)["findings"] if f["name"] == "offline")
    assert offline["status"] == "warn" and "HF_HUB_OFFLINE" in offline["detail"]


def test_doctor_no_local_neither_assembles_nor_runs_the_default_model(tmp_path):
    proc = _doctor(tmp_path, "--json", "--no-local", GROUNDED_LOCAL_GGUF="")
    findings = {f["name"]: f for f in json.loads(proc.stdout)["findings"]}
    assert "local model runtime" not in findings
    assert findings["model file"]["status"] == "warn", findings["model file"]
    assert "not assembled yet" in findings["model file"]["detail"]
    assert "not assembled yet" in findings["disk"]["detail"]
    assert not list((tmp_path / "cache").glob("models/*.gguf"))
