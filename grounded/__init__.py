"""grounded: turn real document corpora into QA datasets grounded in the source text.

    >>> import grounded
    >>> summary = grounded.run(["examples/corpus"], out="out")  # doctest: +SKIP

Heavy stages (embeddings, Chroma, litellm) import on first use, so `import grounded` is cheap.
"""

from __future__ import annotations

import importlib
import importlib.metadata as _metadata
import sys
from types import ModuleType
from typing import Any

from grounded import offline
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
    Document,
    Evidence,
    Hit,
    Provenance,
    QAPair,
    Reason,
    Rejection,
    Verdict,
)

offline.configure()

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
    "ingest": "grounded.ingest",
    "open_index": "grounded.index",
    "search": "grounded.index",
    "generate": "grounded.generate",
    "check": "grounded.checker",
    "run": "grounded.pipeline",
}

__all__ = [
    "Block",
    "CheckError",
    "Chunk",
    "ConfigError",
    "Document",
    "Evidence",
    "GroundedError",
    "Hit",
    "IndexStoreError",
    "LLMError",
    "LoaderError",
    "MissingDependencyError",
    "PromptError",
    "Provenance",
    "QAPair",
    "Reason",
    "Rejection",
    "Verdict",
    "__version__",
    "check",
    "chunk_document",
    "default_checker",
    "from_langchain",
    "generate",
    "ingest",
    "load",
    "open_index",
    "register_loader",
    "run",
    "search",
    "to_langchain",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'grounded' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


class _Package(ModuleType):
    """Keeps `grounded.ingest` & co. the functions after their same-named submodules import.

    Importing `grounded.ingest` makes Python set the package attribute `ingest` to the module,
    which would turn `grounded.ingest(...)` into "module is not callable" depending on what
    happened to be imported first.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and _LAZY.get(name) == f"{__name__}.{name}":
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted(__all__)
