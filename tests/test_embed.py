"""Embedders: MiniLM, the fast static model distilled offline from it, the cache folder."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from grounded.embed import FAST_DIMS, StaticEmbedder, cache_dir, fast_model_path, get_embedder
from grounded.errors import ConfigError

PAIRS = [
    (
        "The lighthouse was moved inland because the shore eroded.",
        "Erosion forced the lighthouse to be relocated.",
    ),
    (
        "Bake the bread at 230 degrees for 35 minutes.",
        "The loaf goes into a hot oven for about half an hour.",
    ),
]
UNRELATED = "Vesuvius erupted in 79 and buried Pompeii."


def _related_beats_unrelated(vecs: np.ndarray) -> None:
    a1, b1, a2, b2, u = vecs
    assert a1 @ b1 > a1 @ u and a2 @ b2 > a2 @ u


def test_cache_dir_respects_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GROUNDED_CACHE_DIR", str(tmp_path / "gc"))
    assert cache_dir() == tmp_path / "gc"
    monkeypatch.delenv("GROUNDED_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "grounded"


def test_unknown_embedder_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown embedder"):
        get_embedder("no-such-embedder")


def test_minilm_vectors_are_normalised_and_meaningful() -> None:
    emb = get_embedder("minilm")
    texts = [t for pair in PAIRS for t in pair] + [UNRELATED]
    vecs = emb.embed(texts)
    assert vecs.shape == (5, emb.dim) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    _related_beats_unrelated(vecs)
    assert emb.embed([]).shape == (0, emb.dim)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Non-loopback connections fail, as on an air-gapped machine."""
    real = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if (
            self.family == getattr(socket, "AF_UNIX", None)
            or str(host).startswith("127.")
            or host == "::1"
        ):
            return real(self, address)  # type: ignore[arg-type]
        raise OSError(f"network blocked by test: {address}")

    monkeypatch.setattr(socket.socket, "connect", connect)


# Distillation runs once per machine (about 20 s on 2 idle cores) into the user cache folder
# (GROUNDED_CACHE_DIR to move it); later runs of this test load the cached model.
@pytest.mark.slow
def test_fast_embedder_is_distilled_once_offline_and_cached(no_network: None) -> None:
    path = fast_model_path()
    assert path.parent == cache_dir() and (path / "model.safetensors").is_file()
    mtime = (path / "model.safetensors").stat().st_mtime
    assert fast_model_path() == path and (path / "model.safetensors").stat().st_mtime == mtime
    emb = StaticEmbedder(path, name="fast")
    texts = [t for pair in PAIRS for t in pair] + [UNRELATED]
    vecs = emb.embed(texts)
    assert vecs.shape == (5, FAST_DIMS) and emb.dim == FAST_DIMS
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    _related_beats_unrelated(vecs)


def test_embedder_plugin_from_an_entry_point_is_an_ingest_embedder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import sys

    from click.testing import CliRunner
    from plugin_dist import install_plugin

    from grounded.cli import main
    from grounded.embed import EMBEDDERS, unregister_embedder

    install_plugin(
        tmp_path,
        monkeypatch,
        group="grounded.embedders",
        module="grounded_tiny_embedder",
        source="""
        import zlib

        import numpy as np

        from grounded.embed import normalise_rows, register_embedder

        CALLS = []

        class TinyEmbedder:
            name = "tiny"
            dim = 32

            def embed(self, texts):
                CALLS.append(len(texts))
                rows = np.zeros((len(texts), self.dim), dtype=np.float32)
                for i, text in enumerate(texts):
                    for word in text.lower().split():
                        rows[i, zlib.crc32(word.encode()) % self.dim] += 1.0
                return normalise_rows(rows)

        register_embedder("tiny", TinyEmbedder)
        """,
    )
    EMBEDDERS.load_plugins(again=True)
    try:
        assert EMBEDDERS.names()[:2] == ["minilm", "fast"] and "tiny" in EMBEDDERS.names()
        idx = tmp_path / "idx"
        docs = Path(__file__).parent / "data" / "ingest" / "good"
        args = ["ingest", str(docs), "--index", str(idx), "--embedder", "tiny", "--json"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["embedder"] == "tiny"
        calls = sys.modules["grounded_tiny_embedder"].CALLS
        embedded = sum(calls)
        assert embedded == json.loads(result.stdout)["chunks_added"] > 0
        result = CliRunner().invoke(main, ["search", "lighthouse", "--index", str(idx), "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["hits"] and sum(calls) == embedded + 1
    finally:
        unregister_embedder("tiny")
    with pytest.raises(ConfigError, match="unknown embedder 'tiny'"):
        get_embedder("tiny")
