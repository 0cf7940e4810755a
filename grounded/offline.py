"""Point the libraries grounded uses at files that ship in their wheels, before they import.

tiktoken, litellm, Hugging Face and Chroma each try to download something at run time; on an
air-gapped machine that either fails or stalls. The settings are applied when grounded starts
work, not when it is imported, and a user's own settings always win.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

_done = False


def package_dir(name: str) -> Path | None:
    """The folder of an installed top-level package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def defaults() -> dict[str, str]:
    """The variables `configure` sets, with the values it gives those the user has not set."""
    env: dict[str, str] = {}
    litellm_dir = package_dir("litellm")
    if litellm_dir is not None:
        tokenizers = litellm_dir / "litellm_core_utils" / "tokenizers"
        if tokenizers.is_dir():
            # litellm ships tiktoken's BPE files under their cache names.
            env["TIKTOKEN_CACHE_DIR"] = str(tokenizers)
    # litellm fetches its price map from GitHub at import unless told to use the bundled copy.
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["LITELLM_LOG"] = "ERROR"
    # Our default models ship inside wheels; never ask the hub.
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["ANONYMIZED_TELEMETRY"] = "False"  # Chroma's posthog client
    env["SCARF_NO_ANALYTICS"] = "true"  # unstructured
    env["DO_NOT_TRACK"] = "true"
    return env


def configure() -> None:
    """Set offline-safe defaults in os.environ, once per process; a variable already set is kept.

    Called where grounded starts work (the CLI entry, the first load of a tokenizer, embedder,
    spaCy pipeline, Chroma or litellm), never by `import grounded`.
    """
    global _done
    if _done:
        return
    _done = True
    for name, value in defaults().items():
        os.environ.setdefault(name, value)
