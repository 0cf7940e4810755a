"""Point the libraries grounded uses at files that ship in their wheels, before they import.

tiktoken, litellm, Hugging Face and Chroma each try to download something at run time; on an
air-gapped machine that either fails or stalls. A user's own settings always win.
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


def configure() -> None:
    """Set offline-safe environment defaults once per process (idempotent)."""
    global _done
    if _done:
        return
    _done = True
    litellm_dir = package_dir("litellm")
    if litellm_dir is not None:
        tokenizers = litellm_dir / "litellm_core_utils" / "tokenizers"
        if tokenizers.is_dir():
            # litellm ships tiktoken's BPE files under their cache names.
            os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(tokenizers))
    # litellm fetches its price map from GitHub at import unless told to use the bundled copy.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    # Our default models ship inside wheels; never ask the hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # Chroma's posthog client
    os.environ.setdefault("SCARF_NO_ANALYTICS", "true")  # unstructured
    os.environ.setdefault("DO_NOT_TRACK", "true")
