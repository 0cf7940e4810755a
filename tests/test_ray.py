"""The same run on Ray (local, 2 CPUs) as in-process: the same kept and rejected sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import PIPELINE_DOCS, FakeLLM, pipeline_responder, register_fake

import grounded
from grounded.cli import main
from grounded.jsonl import read_jsonl

ray = pytest.importorskip("ray")

DOCS = PIPELINE_DOCS
responder = pipeline_responder


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray for the module: 2 CPUs, loopback only (the tests block other addresses)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


@pytest.fixture
def fake():
    f = FakeLLM(responder=responder)
    return f, register_fake(f)


def rows(out: Path, name: str) -> set[str]:
    """Each row as canonical JSON less its creation time (order aside)."""
    out_rows = set()
    for row in read_jsonl(out / name):
        for holder in (row, row.get("pair") or {}):
            (holder.get("provenance") or {}).pop("created", None)
        row.get("provenance", {}).pop("created", None)
        out_rows.add(json.dumps(row, sort_keys=True))
    return out_rows


def test_ray_run_keeps_and_rejects_exactly_what_the_in_process_run_does(
    tmp_path, fake, ray_session
):
    f, model = fake
    opts = {"model": model, "n": 8, "chunk_tokens": 64, "overlap_tokens": 0, "embedder": "fast"}
    local = grounded.run([DOCS], out=tmp_path / "local", **opts)
    calls = len(f.calls)
    on_ray = grounded.run([DOCS], out=tmp_path / "ray", executor="ray", **opts)

    assert on_ray.executor == "ray" and local.executor == "local"
    assert len(f.calls) == 2 * calls  # generation stays in the driver, one call per task
    assert local.kept >= 1 and local.rejected >= 1
    assert rows(tmp_path / "ray", "qa.jsonl") == rows(tmp_path / "local", "qa.jsonl")
    assert rows(tmp_path / "ray", "rejected.jsonl") == rows(tmp_path / "local", "rejected.jsonl")
    assert on_ray.rejected_by_reason == local.rejected_by_reason
    assert on_ray.stages["check"]["records_in"] == local.stages["check"]["records_in"] >= 1


def test_cli_run_ray_resumes_without_new_calls(tmp_path, fake, ray_session):
    f, model = fake
    args = [
        "run",
        str(DOCS),
        "--out",
        str(tmp_path / "o"),
        "--model",
        model,
        "-n",
        "4",
        "--chunk-tokens",
        "64",
        "--embedder",
        "fast",
        "--ray",
        "--json",
    ]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    calls = len(f.calls)
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert len(f.calls) == calls and json.loads(again.output)["llm_calls"] == 0
    assert json.loads(again.output)["kept"] == json.loads(first.output)["kept"]


def test_a_ray_cluster_needs_the_index_on_a_chroma_server(tmp_path, fake):
    _, model = fake
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(DOCS),
            "--out",
            str(tmp_path / "o"),
            "--model",
            model,
            "--ray",
            "ray://10.0.0.1:10001",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "--chroma-url" in result.output
