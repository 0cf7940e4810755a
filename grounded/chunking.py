"""Token-aware chunking that prefers section, paragraph and sentence boundaries.

Sizes are counted in tiktoken `cl100k_base` tokens (the tokenizer ships inside litellm; see
`grounded.offline`). Every chunk is an exact slice: `doc.text[c.start:c.end] == c.text`.
"""

from __future__ import annotations

import functools
import re
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from grounded import offline
from grounded.errors import ConfigError
from grounded.text import sentence_starts
from grounded.types import Block, Chunk, Document

DEFAULT_CHUNK_TOKENS = 256
DEFAULT_OVERLAP_TOKENS = 32
ENCODING = "cl100k_base"

# Break priorities: a chunk ends at the best boundary inside its token window.
_SECTION, _PARAGRAPH, _LINE, _SENTENCE, _WORD = 4, 3, 2, 1, 0
# How far into the window (fraction of chunk_tokens) a boundary of each kind may fall.
_MIN_FILL = {_SECTION: 0.25, _PARAGRAPH: 0.5, _LINE: 0.6, _SENTENCE: 0.5, _WORD: 0.5}

_PARA_RE = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_LINE_RE = re.compile(r"\n\s*")
_WS_RE = re.compile(r"\s+")
_NON_SPACE_RE = re.compile(r"\S")


@functools.lru_cache(maxsize=2)
def encoding(name: str = ENCODING) -> Any:
    """The tiktoken encoding, loaded from the offline cache set up by `grounded.offline`."""
    offline.configure()
    import tiktoken

    return tiktoken.get_encoding(name)


def count_tokens(text: str, *, name: str = ENCODING) -> int:
    """Number of tokens of `text` in the chunking tokenizer."""
    return len(encoding(name).encode(_tokenizable(text), disallowed_special=()))


def _tokenizable(text: str) -> str:
    # Lone surrogates cannot be encoded; '?' keeps every character at its offset.
    if text.isascii():  # O(1) for str; spares a copy of a huge document
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


@functools.lru_cache(maxsize=2)
def _token_byte_lengths(name: str) -> np.ndarray:
    """Byte length of every token id (a lookup table, built once)."""
    enc = encoding(name)
    table = np.zeros(enc.n_vocab, dtype=np.int64)
    for i in range(enc.n_vocab):
        try:
            table[i] = len(enc.decode_single_token_bytes(i))
        except KeyError:  # unused ids between the ranks and the special tokens
            pass
    return table


def _token_offsets(text: str, name: str) -> Sequence[int]:
    """Character offset where each token starts (tiktoken's decode_with_offsets, vectorised).

    A compact array, not a list: a 50 MB document has ~12M tokens, ~430 MB as Python ints.
    """
    enc = encoding(name)
    safe = _tokenizable(text)
    encode_np = getattr(enc, "encode_to_numpy", None)
    if encode_np is not None:
        tokens = encode_np(safe, disallowed_special=())
    else:  # older tiktoken
        tokens = np.asarray(enc.encode(safe, disallowed_special=()), dtype=np.int64)
    if not len(tokens):
        return _int_array(np.zeros(0, dtype=np.int64), 0)
    lengths = _token_byte_lengths(name)[tokens]
    del tokens
    starts = np.empty(len(lengths), dtype=np.int64)
    starts[0] = 0
    np.cumsum(lengths[:-1], out=starts[1:])  # byte offset where each token starts
    del lengths
    if not safe.isascii():
        _bytes_to_chars(np.frombuffer(safe.encode("utf-8"), dtype=np.uint8), starts)
    return _int_array(starts, len(text))


def _bytes_to_chars(raw: np.ndarray, starts: np.ndarray, step: int = 1 << 20) -> None:
    """Turn sorted UTF-8 byte offsets into offsets of the characters they fall in, in place.

    The character holding byte b is b minus the continuation bytes (10xxxxxx) in [0, b]; counted
    block by block so the extra memory stays one block, not 8 bytes per byte of text.
    """
    carry, lo_i = 0, 0
    for lo in range(0, len(raw), step):
        cont = (raw[lo : lo + step] & 0xC0) == 0x80
        hi_i = lo_i + int(np.searchsorted(starts[lo_i:], lo + step, side="left"))
        if hi_i > lo_i:
            before = np.cumsum(cont, dtype=np.int64)
            part = starts[lo_i:hi_i]
            part -= carry + before[part - lo]
        carry += int(np.count_nonzero(cont))
        lo_i = hi_i


def _int_array(values: np.ndarray, limit: int) -> array:
    # array.array: 4 bytes an entry, and bisect works on it directly (numpy scalars are slow).
    out = array("i" if limit < 2**31 else "q")
    out.frombytes(values.astype(np.dtype(out.typecode), copy=False).tobytes())
    return out


def _positions(pattern: re.Pattern[str], text: str, extra: Iterable[int] = ()) -> array:
    """Sorted distinct match ends of `pattern` in `text` (plus `extra`), as a compact array."""
    found = np.fromiter((m.end() for m in pattern.finditer(text)), dtype=np.int64)
    more = np.fromiter(extra, dtype=np.int64)
    return _int_array(np.unique(np.concatenate((found, more))), len(text))


class _Boundaries:
    """Sorted candidate break positions (char offsets where a new chunk may start), by kind."""

    def __init__(self, text: str, blocks: Sequence[Block]) -> None:
        section: set[int] = set()
        para_blocks: set[int] = set()
        prev: Block | None = None
        for b in blocks:
            if prev is not None:
                (section if b.section != prev.section or b.kind == "Title" else para_blocks).add(
                    b.start
                )
            prev = b
        para = _positions(_PARA_RE, text, para_blocks)
        if section:
            para = _int_array(
                np.setdiff1d(np.asarray(para), np.fromiter(section, dtype=np.int64)), len(text)
            )
        self.by_kind: dict[int, Sequence[int]] = {
            _SECTION: sorted(section),
            _PARAGRAPH: para,
            _LINE: _positions(_LINE_RE, text),
            # the project's one sentence splitter; lines are their own kind above
            _SENTENCE: _int_array(
                np.asarray(sentence_starts(text, newlines=False), dtype=np.int64), len(text)
            ),
        }
        self.text = text  # word boundaries are searched on demand: they are rarely needed

    def last_in(self, kind: int, lo: int, hi: int) -> int | None:
        """The largest boundary of `kind` in (lo, hi]."""
        if kind == _WORD:
            last = None
            for m in _WS_RE.finditer(self.text, lo, hi):
                last = m.end()
            return last if last is not None and last > lo else None
        xs = self.by_kind[kind]
        i = bisect_right(xs, hi) - 1
        return xs[i] if i >= 0 and xs[i] > lo else None

    def first_in(self, kind: int, lo: int, hi: int) -> int | None:
        """The smallest boundary of `kind` in [lo, hi)."""
        if kind == _WORD:
            m = _WS_RE.search(self.text, lo, hi)
            return m.end() if m is not None and m.end() < hi else None
        xs = self.by_kind[kind]
        i = bisect_left(xs, lo)
        return xs[i] if i < len(xs) and xs[i] < hi else None


def chunk_document(
    doc: Document,
    *,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
    encoding_name: str = ENCODING,
) -> Iterator[Chunk]:
    """Split a document into chunks of at most `chunk_tokens` tokens, overlapping by up to
    `overlap_tokens` (never across a section boundary), ending at the strongest boundary
    available: section, paragraph, line, sentence, then word.

        >>> from grounded import Document
        >>> [c.text for c in chunk_document(Document.from_text("One. Two.", source="x"))]
        ['One. Two.']
    """
    if chunk_tokens < 1:
        raise ConfigError(f"chunk_tokens must be positive, got {chunk_tokens}")
    if not 0 <= overlap_tokens < chunk_tokens:
        raise ConfigError(
            f"overlap_tokens must be >= 0 and smaller than chunk_tokens ({chunk_tokens}), got {overlap_tokens}"
        )
    text = doc.text
    length = len(text)
    # Where the text's trailing whitespace begins. Never `text[end:].strip()` per chunk: that
    # copies the rest of the document for every chunk, quadratic in its length.
    content_end = _rstrip(text, 0, length)
    if content_end == 0:
        return
    offs = _token_offsets(text, encoding_name)
    n = len(offs)
    bounds = _Boundaries(text, doc.blocks)
    block_starts = [b.start for b in doc.blocks]

    start = _skip_space(text, 0)
    while start < length:
        s = bisect_right(offs, start) - 1  # token holding the start char
        s = max(s, 0)
        limit = s + chunk_tokens
        if limit >= n:
            end, kind = length, _SECTION
        else:
            end, kind = _pick_break(text, offs, bounds, start, s, limit, chunk_tokens)
        c_start, c_end = start, _rstrip(text, start, end)
        if c_end > c_start:
            tokens = bisect_left(offs, c_end) - s
            yield _make_chunk(doc, c_start, c_end, max(tokens, 1), block_starts)
        if end >= content_end:
            return
        nxt = end
        if overlap_tokens and kind != _SECTION:
            # After a paragraph break only whole sentences are worth repeating; after a cut
            # inside a paragraph any word start will do.
            kinds = (_SENTENCE,) if kind >= _LINE else (_SENTENCE, _WORD)
            nxt = _overlap_start(text, offs, bounds, end, overlap_tokens, lower=start, kinds=kinds)
        start = _skip_space(text, nxt)


def _pick_break(
    text: str, offs: Sequence[int], bounds: _Boundaries, start: int, s: int, limit: int, size: int
) -> tuple[int, int]:
    hi = offs[limit]  # first char of the first token that no longer fits
    for kind in (_SECTION, _PARAGRAPH, _LINE, _SENTENCE, _WORD):
        lo_tok = s + max(1, int(size * _MIN_FILL[kind]))
        lo = max(offs[min(lo_tok, limit)], start)
        pos = bounds.last_in(kind, lo, hi)
        if pos is not None and pos > start:
            return pos, kind
    # No whitespace at all in the window (a long URL, CJK text): cut at the token boundary.
    return max(hi, start + 1), -1


def _overlap_start(
    text: str,
    offs: Sequence[int],
    bounds: _Boundaries,
    end: int,
    overlap: int,
    *,
    lower: int,
    kinds: tuple[int, ...],
) -> int:
    e = bisect_left(offs, end)
    cand = offs[max(e - overlap, 0)]
    cand = max(cand, lower + 1)
    if cand >= end:
        return end
    for kind in kinds:
        pos = bounds.first_in(kind, cand, end)
        if pos is not None:
            return pos
    return end


def _skip_space(text: str, pos: int) -> int:
    m = _NON_SPACE_RE.search(text, pos)  # \s is str.isspace, scanned in C
    return m.start() if m is not None else len(text)


def _rstrip(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def _make_chunk(doc: Document, start: int, end: int, tokens: int, block_starts: list[int]) -> Chunk:
    section: tuple[str, ...] = ()
    page: int | None = None
    if doc.blocks:
        i = bisect_right(block_starts, start) - 1
        if i < 0 or doc.blocks[i].end <= start:  # the chunk starts between blocks: use the next one
            i = min(i + 1, len(doc.blocks) - 1)
        block = doc.blocks[i]
        # A chunk opening with headings belongs to the section of its first body block.
        j = i
        while j < len(doc.blocks) and doc.blocks[j].start < end and doc.blocks[j].kind == "Title":
            j += 1
        if j < len(doc.blocks) and doc.blocks[j].start < end:
            block = doc.blocks[j]
        section, page = block.section, block.page
    return Chunk(
        id=Chunk.make_id(doc.id, start, end),
        doc_id=doc.id,
        text=doc.text[start:end],
        start=start,
        end=end,
        source=doc.source,
        title=doc.title,
        section=section,
        page=page,
        tokens=tokens,
    )
