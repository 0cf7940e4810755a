"""The project's one text toolkit: tokenizer, light stemmer, number parsing, sentence splitter.

Cheap and regex-based (the checker runs it on every pair and source sentence); used by the
checker, chunking, the document loaders and generation's quote choices."""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace

STOPWORDS: frozenset[str] = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each either else
    ever every few for from further had has have having he her here hers herself him himself his
    how however i if in into is it its itself just least less let like many may me might more most
    much must my myself neither nor of off on once one only or other ought our ours ourselves out
    over own per rather same shall she should since so some such than that the their theirs them
    themselves then there these they this those though through thus to too under until up upon us
    very via was we were what whatever when where whether which while who whom whose why will with
    within would yet you your yours yourself yourselves s t d ll m re ve etc among amongst became
    become becomes get gets got known called named name use used using via whereas onto""".split()
)
NEGATIONS: frozenset[str] = frozenset(
    {
        "not",
        "never",
        "none",
        "nobody",
        "nothing",
        "neither",
        "nor",
        "without",
        "cannot",
        "n't",
        "nowhere",
        "unable",
        "lack",
        "lacks",
        "lacked",
        "fail",
        "fails",
        "failed",
    }
)
NUMBER_WORDS: dict[str, int] = {
    "zero": 0,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
    "dozen": 12,
    "first": 1,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "twentieth": 20,
    "twice": 2,
    "thrice": 3,
}
MONTHS: dict[str, int] = {
    m: i
    for i, names in enumerate(
        (
            "january jan",
            "february feb",
            "march",
            "april apr",
            "may",
            "june jun",
            "july jul",
            "august aug",
            "september sep sept",
            "october oct",
            "november nov",
            "december dec",
        ),
        1,
    )
    for m in names.split()
}
SCALES: dict[str, float] = {
    "thousand": 1e3,
    "million": 1e6,
    "billion": 1e9,
    "trillion": 1e12,
    "k": 1e3,
    "m": 1e6,
    "bn": 1e9,
}

# Kana and Han characters are written without spaces: each is a token of its own.
_CJK_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(
    rf"\d+(?:[.,:/]\d+)*(?:st|nd|rd|th|s)?|[{_CJK_CHARS}]|[^\W\d_{_CJK_CHARS}]+(?:['’][^\W\d_{_CJK_CHARS}]+)*|n't",
    re.UNICODE,
)
_HAN_KATAKANA = re.compile("[\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

# Where a sentence may end: terminal punctuation (with closing quotes and brackets) before a
# space and a capital or digit, or right before a capitalised word ("here.Two"), a CJK full
# stop, and (unless told otherwise) a line break. A period inside a number ("3.5") never ends one.
_END = r"[.!?][\"'\u201d\u2019)\]]*\s+(?=[\"'\u201c\u2018(\[]?[A-Z0-9])|(?<=[a-z]{2})[.!?](?=[A-Z][a-z])|[。！？]\s*"
_SENTENCE_END = re.compile(_END + r"|\n+")
_SENTENCE_END_INLINE = re.compile(_END)
# Words whose period does not end a sentence ("Dr. Holloway", "St. Paul", "approx. 40").
ABBREVIATIONS: frozenset[str] = frozenset(
    """mr mrs ms messrs dr prof st jr sr sen rep gov gen col lt sgt capt maj adm rev hon mt ft vs
    etc cf al fig figs approx inc ltd co corp bros dept est vol pp ed eds univ jan feb mar apr jun
    jul aug sep sept oct nov dec ca c""".split()
)
# The word before a period: letters, possibly dotted ("U.S", "e.g").
_WORD_BEFORE_DOT = re.compile(r"(?<![\w.])(\w+(?:\.\w+)*)$")


def fold(text: str) -> str:
    """Strip accents so 'Zürich' and 'Zurich' match."""
    if text.isascii():
        return text  # nothing to strip (the common case: skips the normalisation's copy)
    decomposed = unicodedata.normalize("NFKD", text)
    # ASCII has no combining marks: only the non-ASCII runs are filtered, char by char
    return _NON_ASCII.sub(_drop_combining, decomposed)


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _drop_combining(m: re.Match[str]) -> str:
    return "".join(c for c in m.group() if not unicodedata.combining(c))


@functools.lru_cache(maxsize=262_144)
def stem(word: str) -> str:
    """A light English stemmer: enough to match plurals, -ing, -ed, possessives."""
    w = word.lower()
    if w.endswith(("'s", "’s")):
        w = w[:-2]
    if len(w) <= 3 or w[0].isdigit():
        return w
    for suffix, repl in (
        ("ies", "y"),
        ("ied", "y"),
        ("sses", "ss"),
        ("xes", "x"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("ing", ""),
        ("edly", ""),
        ("ed", ""),
        ("ly", ""),
        ("s", ""),
    ):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            if suffix == "s" and w.endswith(("ss", "us", "is")):
                break
            w = w[: len(w) - len(suffix)] + repl
            break
    return w


_ORDINAL_SUFFIX = re.compile(r"(st|nd|rd|th|s)$")
_DIGIT_GROUPS = re.compile(r"\d{1,3}(,\d{3})+(\.\d+)?")


def number_value(token: str) -> float | None:
    """The numeric value of a token: '1,200' -> 1200, '3.5' -> 3.5, '1990s' -> 1990, 'twelve' -> 12."""
    t = token.lower()
    if t in NUMBER_WORDS:
        return float(NUMBER_WORDS[t])
    if t in MONTHS and token[:1].isupper() and t != "may":
        return float(MONTHS[t])  # dates: 'November 2018' matches '2018-11-10'
    if not t[:1].isdigit():
        return None  # stripping a suffix below never makes a word start with a digit
    t = _ORDINAL_SUFFIX.sub("", t)
    if not t or not t[0].isdigit():
        return None
    if ":" in t or "/" in t:
        return None  # times and dates are compared as strings
    t = t.replace(",", "") if _DIGIT_GROUPS.fullmatch(t) else t.replace(",", ".")
    try:
        return float(t)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    stem: str
    capital: bool
    number: float | None
    start: int


def tokenize(text: str) -> list[Token]:
    """The tokens of `text` (a fresh list; the work is cached by text, see `tokens_of`)."""
    return list(tokens_of(text))


@functools.lru_cache(maxsize=65_536)
def tokens_of(text: str) -> tuple[Token, ...]:
    """`tokenize`, cached: evidence sentences and windows are compared with many pairs."""
    out: list[Token] = []
    folded = fold(text)
    for m in _TOKEN.finditer(folded):
        raw = m.group(0)
        out.append(Token(raw, stem(raw), raw[:1].isupper(), number_value(raw), m.start()))
    # '2.5 million' -> one value
    for i in range(len(out) - 1):
        value = out[i].number
        if value is not None and out[i + 1].text.lower() in SCALES:
            out[i] = replace(out[i], number=value * SCALES[out[i + 1].text.lower()])
    return tuple(out)


def is_month(tok: Token) -> bool:
    return tok.capital and tok.text.lower() in MONTHS


def content(tokens: Iterable[Token]) -> list[Token]:
    """The tokens that carry meaning: no stopwords, negations or single letters (Han/katakana kept)."""
    out = []
    for t in tokens:
        kind = _CONTENT.get(t.text)
        if kind is None:
            kind = _content_kind(t.text)
        if kind == _WORD_CONTENT or (kind == _NUMBER_CONTENT and t.number is not None):
            out.append(t)
    return out


# What `content` decides from a token's text alone (memoised: the vocabulary is small):
# content, content only when it is a number (a single character), or never.
_WORD_CONTENT, _NUMBER_CONTENT, _NOT_CONTENT = 1, 2, 0
_CONTENT: dict[str, int] = {}


def _content_kind(text: str) -> int:
    low = text.lower()
    if low in STOPWORDS or low in NEGATIONS or low.endswith(("n't", "n’t")):
        kind = _NOT_CONTENT
    elif len(text) > 1 or _HAN_KATAKANA.match(text) is not None:
        kind = _WORD_CONTENT
    else:
        kind = _NUMBER_CONTENT
    if len(_CONTENT) >= 200_000:
        _CONTENT.clear()
    _CONTENT[text] = kind
    return kind


def is_negation(tok: Token) -> bool:
    """'not', 'never', ... and contractions ("isn't", "didn't")."""
    low = tok.text.lower()
    return low in NEGATIONS or low.endswith(("n't", "n’t"))


# English function words frequent in any English prose and rare in other Latin-script languages.
_EN_COMMON: frozenset[str] = frozenset(
    "the of and to is was that for it with as by are were this from at be has have which an not his "
    "her their they he she been had who what would there these in a".split()
)
_EN_WORD = re.compile(r"[a-z]+")


@functools.lru_cache(maxsize=16_384)
def looks_english(text: str) -> bool:
    """A cheap script and stopword test: mostly Latin letters and enough common English words."""
    sample = text[:3000]
    if not sample.isascii():
        # ASCII letters counted in C, the few other characters one by one
        ascii_letters = sum(map(sample.count, string.ascii_letters))
        others = [c for c in "".join(_NON_ASCII.findall(sample)) if c.isalpha()]
        letters = ascii_letters + len(others)
        latin = ascii_letters + sum(c < "\u0250" for c in others)
        if letters and latin / letters < 0.5:
            return False  # another script (CJK, Cyrillic, Arabic, Greek, ...)
        sample = fold(sample)
    words = _EN_WORD.findall(sample.lower())
    if len(words) < 20:
        return True  # too short to tell: English word lists apply
    return sum(w in _EN_COMMON for w in words) / len(words) >= 0.08


def _ends_sentence(text: str, at: int) -> bool:
    """False when the period at `at` belongs to an abbreviation, an initial or a dotted acronym
    ("Dr.", "J. K.", "U.S."), not to the end of a sentence."""
    if text[at] != ".":
        return True
    m = _WORD_BEFORE_DOT.search(text, max(0, at - 24), at)
    if m is None:
        return True
    word = m.group(1)
    if "." in word:
        return False  # "U.S.", "e.g.", "Ph.D."
    if len(word) == 1 and word.isupper():
        return False  # an initial: "John F. Kennedy"
    return word.lower() not in ABBREVIATIONS


def sentence_starts(text: str, *, newlines: bool = True) -> list[int]:
    """Offsets where a new sentence begins (after the whitespace that ends the previous one).

    newlines: a line break also ends a sentence (False where lines are handled separately).
    """
    pattern = _SENTENCE_END if newlines else _SENTENCE_END_INLINE
    return [
        m.end()
        for m in pattern.finditer(text)
        if m.end() < len(text) and (m.group(0).startswith("\n") or _ends_sentence(text, m.start()))
    ]


def sentence_spans(text: str, *, newlines: bool = True) -> list[tuple[int, int]]:
    """(start, end) of each sentence, surrounding whitespace excluded: text[start:end] is verbatim."""
    bounds = [0, *sentence_starts(text, newlines=newlines), len(text)]
    out = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        seg = text[a:b]
        lead = len(seg) - len(seg.lstrip())
        trail = len(seg.rstrip())
        if trail > lead:
            out.append((a + lead, a + trail))
    return out


def split_sentences(text: str, *, newlines: bool = True) -> list[str]:
    """The sentences of `text`, stripped (the project's one sentence splitter)."""
    return [text[a:b] for a, b in sentence_spans(text, newlines=newlines)]


def is_numeric(tok: Token) -> bool:
    return tok.number is not None or tok.text[:1].isdigit()


def is_date_like(tok: Token) -> bool:
    """A year (4 digits, 1000-2100, or a decade like '1990s') or a month name."""
    if tok.number is None:
        return False
    digits = tok.text.rstrip("s")
    year = len(digits) == 4 and digits.isdigit() and 1000 <= tok.number <= 2100
    return year or (tok.text.lower() in MONTHS and tok.capital)
