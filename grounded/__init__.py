"""grounded: turn real document corpora into QA datasets grounded in the source text.

    >>> import grounded
    >>> summary = grounded.run(["examples/corpus"], out="out")  # doctest: +SKIP

Heavy stages (embeddings, Chroma, litellm) import on first use, so `import grounded` is cheap.
"""

# Every public name of this module is in __all__ (tests/test_api.py): helpers are imported private.
import importlib as _importlib
import importlib.metadata as _metadata
from typing import Any as _Any

from grounded.errors import (
    CheckError,
    ConfigError,
    GroundedError,
    IndexStoreError,
    LLMError,
    LoaderError,
    MissingDependencyError,
    PromptError,
)
from grounded.types import (
    Block,
    Chunk,
    ClaimVerdict,
    Document,
    Evidence,
    Hit,
    Provenance,
    QAPair,
    Reason,
    Rejection,
    Verdict,
)

try:
    __version__ = _metadata.version("grounded")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

# Public functions, resolved lazily: name -> module that defines it.
_LAZY = {
    "load": "grounded.loaders",
    "register_loader": "grounded.loaders",
    "from_langchain": "grounded.loaders",
    "to_langchain": "grounded.loaders",
    "default_checker": "grounded.checker",
    "chunk_document": "grounded.chunking",
    "ingest": "grounded.ingestion",
    "open_index": "grounded.index",
    "search": "grounded.index",
    "generate": "grounded.generation",
    "check": "grounded.checker",
    "check_long": "grounded.checker.long_answers",
    "run": "grounded.pipeline",
    # the options a run is built from (grounded.options)
    "RunOptions": "grounded.options",
    "IngestOptions": "grounded.options",
    "ModelOptions": "grounded.options",
    "GenerateOptions": "grounded.options",
    "ExecutorOptions": "grounded.options",
    "CheckOptions": "grounded.options",
    # extension points: built-ins register through these too
    "CheckSpec": "grounded.checker",
    "register_check": "grounded.checker",
    "register_exporter": "grounded.export",
    "register_embedder": "grounded.embed",
    "register_transport": "grounded.llm",
}

__all__ = [
    "__version__",
    "Block",
    "check",
    "check_long",
    "CheckError",
    "CheckOptions",
    "CheckSpec",
    "Chunk",
    "chunk_document",
    "ClaimVerdict",
    "ConfigError",
    "default_checker",
    "Document",
    "Evidence",
    "ExecutorOptions",
    "from_langchain",
    "generate",
    "GenerateOptions",
    "GroundedError",
    "Hit",
    "IndexStoreError",
    "ingest",
    "IngestOptions",
    "LLMError",
    "load",
    "LoaderError",
    "MissingDependencyError",
    "ModelOptions",
    "open_index",
    "PromptError",
    "Provenance",
    "QAPair",
    "Reason",
    "register_check",
    "register_embedder",
    "register_exporter",
    "register_loader",
    "register_transport",
    "Rejection",
    "run",
    "RunOptions",
    "search",
    "to_langchain",
    "Verdict",
]


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'grounded' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
