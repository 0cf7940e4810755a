"""Locate a quoted span in a source text by character offsets (exact, normalised, then fuzzy)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from rapidfuzz import fuzz

# Typographic variants that models and documents swap freely.
_TRANSLATE = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u00a0": " ",
        "\u2026": "...",
    }
)


@dataclass(frozen=True, slots=True)
class Alignment:
    """Where a quote sits in a text: `text[start:end]`, with a match score in [0, 1]."""

    start: int
    end: int
    score: float


def normalise(text: str) -> tuple[str, list[int]]:
    """Lower-cased, whitespace-collapsed text plus a map from each output char to its source index."""
    out: list[str] = []
    index: list[int] = []
    prev_space = True
    for i, ch in enumerate(text):
        ch = unicodedata.normalize("NFKC", ch).translate(_TRANSLATE).lower()
        for c in ch:
            if c.isspace():
                if prev_space:
                    continue
                c = " "
                prev_space = True
            else:
                prev_space = False
            out.append(c)
            index.append(i)
    while out and out[-1] == " ":
        out.pop()
        index.pop()
    return "".join(out), index


def align(quote: str, text: str, *, min_score: float = 0.0) -> Alignment | None:
    """Find `quote` in `text`; None when nothing scores at least `min_score`."""
    quote = quote.strip()
    if not quote or not text:
        return None
    pos = text.find(quote)
    if pos >= 0:
        return Alignment(pos, pos + len(quote), 1.0)
    nq, _ = normalise(quote)
    nt, idx = normalise(text)
    if not nq or not nt:
        return None
    pos = nt.find(nq)
    if pos >= 0:
        return Alignment(idx[pos], idx[pos + len(nq) - 1] + 1, 1.0)
    res = fuzz.partial_ratio_alignment(nq, nt, score_cutoff=min_score * 100)
    if res is None or res.dest_end <= res.dest_start:
        return None
    # partial_ratio scores the best window of the longer string; when the quote is longer than
    # the text, penalise by how much of the quote is covered.
    score = res.score / 100.0
    if len(nq) > len(nt):
        score *= len(nt) / len(nq)
    if score < min_score:
        return None
    start, end = _trim_to_words(nt, res.dest_start, res.dest_end)
    return Alignment(idx[start], idx[end - 1] + 1, score)


def _trim_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen a fuzzy window to whole words so offsets never split a token."""
    while start > 0 and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while end < len(text) and text[end - 1].isalnum() and text[end].isalnum():
        end += 1
    return start, end
