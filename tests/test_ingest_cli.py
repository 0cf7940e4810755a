"""`grounded ingest` / `grounded search` through click, and one real subprocess with the network cut."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from grounded.cli import main
from grounded.errors import EXIT_PARTIAL

DATA = Path(__file__).parent / "data" / "ingest"
GOOD = DATA / "good"
BAD = DATA / "bad"
REPO = Path(__file__).resolve().parent.parent

# Installed as sitecustomize in the subprocess: any non-loopback connection or DNS look-up fails.
NO_NETWORK = """
import socket
_connect, _gai = socket.socket.connect, socket.getaddrinfo
def _local(host):
    return host is None or (isinstance(host, str) and (host.startswith("127.") or host in ("::1", "localhost")))
def connect(self, address):
    if self.family == getattr(socket, "AF_UNIX", None) or _local(address[0] if isinstance(address, tuple) else address):
        return _connect(self, address)
    raise OSError("network blocked by test: %r" % (address,))
def getaddrinfo(host, *a, **k):
    if _local(host):
        return _gai(host, *a, **k)
    raise socket.gaierror("network blocked by test: %r" % (host,))
socket.socket.connect = connect
socket.getaddrinfo = getaddrinfo
"""


def _run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.stdout, result.stderr


def test_ingest_json_then_search_json(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    code, out, _ = _run(
        [
            "ingest",
            str(GOOD),
            "--index",
            str(idx),
            "--chunk-tokens",
            "24",
            "--overlap-tokens",
            "4",
            "--json",
        ]
    )
    assert code == 0, out
    summary = json.loads(out)
    assert summary["documents"] == len(list(GOOD.iterdir()))
    assert summary["chunks"] >= summary["documents"]
    assert summary["skipped"] == []
    for key in ("added", "unchanged", "replaced", "removed", "embedder"):
        assert key in summary
    assert summary["added"] == summary["documents"]

    code, out, _ = _run(
        ["search", "highest tides in the world", "--index", str(idx), "-k", "2", "--json"]
    )
    assert code == 0, out
    hits = json.loads(out)["hits"]
    assert len(hits) == 2
    top = hits[0]
    for key in ("text", "doc_id", "source", "start", "end", "score", "chunk_id", "section", "page"):
        assert key in top
    assert Path(top["source"]).name == "tides.pdf" and top["page"] == 2
    assert "Fundy" in top["text"]

    code, out, _ = _run(
        [
            "ingest",
            str(GOOD),
            "--index",
            str(idx),
            "--chunk-tokens",
            "24",
            "--overlap-tokens",
            "4",
            "--json",
        ]
    )
    again = json.loads(out)
    assert code == 0 and again["unchanged"] == again["files"] and again["chunks_added"] == 0


def test_bad_files_are_skipped_with_reasons_and_exit_partial(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(BAD, corpus)
    shutil.copy(GOOD / "notes.txt", corpus / "notes.txt")
    (corpus / "dangling.md").symlink_to(tmp_path / "missing.md")
    code, out, _ = _run(["ingest", str(corpus), "--index", str(tmp_path / "idx"), "--json"])
    assert code == EXIT_PARTIAL
    summary = json.loads(out)
    assert summary["documents"] == 1
    reasons = {Path(s["path"]).name: s["reason"] for s in summary["skipped"]}
    assert set(reasons) == {p.name for p in BAD.iterdir()} | {"dangling.md"}
    assert "empty file" in reasons["empty.txt"]
    assert "binary content" in reasons["binary.txt"]
    assert "not a PDF" in reasons["junk.pdf"]
    assert "corrupt PDF" in reasons["truncated.pdf"]
    assert "DOCX" in reasons["corrupt.docx"] and "DOCX" in reasons["notword.docx"]
    assert "unsupported file type" in reasons["data.xyz"]
    assert "no such file" in reasons["dangling.md"]


def test_too_large_files_are_skipped(tmp_path: Path) -> None:
    code, out, _ = _run(
        [
            "ingest",
            str(GOOD / "volcanoes.docx"),
            str(GOOD / "notes.txt"),
            "--index",
            str(tmp_path / "i"),
            "--max-mb",
            "0.01",
            "--json",
        ]
    )
    assert code == EXIT_PARTIAL
    (skipped,) = json.loads(out)["skipped"]
    assert Path(skipped["path"]).name == "volcanoes.docx" and "too large" in skipped["reason"]


def test_human_output_and_errors(tmp_path: Path) -> None:
    code, out, err = _run(["ingest", str(GOOD / "notes.txt"), "--index", str(tmp_path / "i")])
    assert code == 0 and "1 documents" in out
    code, out, err = _run(["search", "lighthouse", "--index", str(tmp_path / "i")])
    assert code == 0 and out.startswith("1. [") and "notes.txt" in out
    code, out, err = _run(["search", "anything", "--index", str(tmp_path / "nothing")])
    assert code == 4 and "no index at" in err
    code, out, err = _run(
        ["ingest", str(GOOD), "--index", str(tmp_path / "i"), "--embedder", "fast"]
    )
    assert code == 4 and "built with embedder 'minilm'" in err
    code, out, err = _run(
        ["ingest", str(GOOD), "--index", str(tmp_path / "j"), "--embedder", "nope"]
    )
    assert code == 2 and "unknown embedder" in err
    code, out, err = _run(
        [
            "ingest",
            str(GOOD),
            "--index",
            str(tmp_path / "k"),
            "--chunk-tokens",
            "64",
            "--overlap-tokens",
            "64",
        ]
    )
    assert code == 2 and "overlap_tokens" in err


@pytest.mark.slow
def test_real_subprocess_on_example_corpus_with_network_blocked(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_NETWORK)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import socket; socket.create_connection(('93.184.216.34', 80), timeout=2)",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert "network blocked by test" in probe.stderr
    grounded = Path(sys.executable).with_name("grounded")
    cmd = [str(grounded)] if grounded.exists() else [sys.executable, "-m", "grounded.cli"]
    proc = subprocess.run(
        [
            *cmd,
            "ingest",
            str(REPO / "examples" / "corpus"),
            "--index",
            str(tmp_path / "idx"),
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["documents"] == 6 and summary["skipped"] == []
    assert "network blocked" not in proc.stderr


@pytest.mark.slow
def test_worker_processes_give_the_same_result(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(GOOD, corpus)
    shutil.copy(BAD / "junk.pdf", corpus / "junk.pdf")
    args = ["--chunk-tokens", "32", "--overlap-tokens", "4", "--json"]
    code1, out1, _ = _run(["ingest", str(corpus), "--index", str(tmp_path / "serial"), *args])
    code2, out2, _ = _run(
        ["ingest", str(corpus), "--index", str(tmp_path / "pool"), "--workers", "2", *args]
    )
    assert code1 == code2 == EXIT_PARTIAL
    serial, pooled = json.loads(out1), json.loads(out2)
    for key in ("documents", "chunks", "added", "skipped"):
        assert serial[key] == pooled[key], key
    from grounded.index import open_index

    ids = [
        sorted(c.id for c in open_index(tmp_path / name).chunks()) for name in ("serial", "pool")
    ]
    assert ids[0] == ids[1]


def test_unpicklable_loader_falls_back_to_serial(tmp_path: Path) -> None:
    from grounded.ingestion import _pool
    from grounded.loaders import register_loader, unregister_loader

    register_loader(".lambda", lambda path: iter(()))
    try:
        assert _pool(2) is None
    finally:
        unregister_loader(".lambda")


def _grounded_cmd() -> list[str]:
    grounded = Path(sys.executable).with_name("grounded")
    return [str(grounded)] if grounded.exists() else [sys.executable, "-m", "grounded.cli"]


def test_symlink_loops_finish_quickly_and_are_skipped_with_a_reason(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    shutil.copy(GOOD / "notes.txt", corpus / "notes.txt")
    (corpus / "sub" / "more.txt").write_text(
        "The tide tables for the harbour are printed weekly.\n"
    )
    # Two links to "." made the walk grow as 2^depth; a link up from a subfolder loops too.
    (corpus / "a").symlink_to(".")
    (corpus / "b").symlink_to(".")
    (corpus / "sub" / "up").symlink_to("..")
    (corpus / "twin").symlink_to("sub")  # a second name for a folder: walked once, not a loop
    proc = subprocess.run(
        [*_grounded_cmd(), "ingest", str(corpus), "--index", str(tmp_path / "i"), "--json"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == EXIT_PARTIAL, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["documents"] == 2 and summary["files"] == 2
    reasons = {
        Path(s["path"]).relative_to(corpus).as_posix(): s["reason"] for s in summary["skipped"]
    }
    assert set(reasons) == {"a", "b", "sub/up"}
    assert all(
        r.startswith("folder loop: leads back to ") and str(corpus.resolve()) in r
        for r in reasons.values()
    )
