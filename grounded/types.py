"""Core data types shared by every stage: small, frozen, JSON-serialisable."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any


def content_hash(text: str, length: int = 16) -> str:
    """Stable short hex digest of a text (sha256)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]


@dataclass(frozen=True, slots=True)
class Block:
    """A structural element of a document (title, paragraph, list item, table) by char offsets."""

    start: int
    end: int
    kind: str = "text"
    section: tuple[str, ...] = ()
    page: int | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """A loaded source document; `id` is the hash of its text so identical files share it."""

    id: str
    source: str
    text: str
    title: str = ""
    blocks: tuple[Block, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_text(
        cls,
        text: str,
        *,
        source: str,
        title: str = "",
        blocks: tuple[Block, ...] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> Document:
        return cls(
            id=content_hash(text),
            source=source,
            text=text,
            title=title,
            blocks=blocks,
            metadata=dict(metadata or {}),
        )


@dataclass(frozen=True, slots=True)
class Chunk:
    """A contiguous span of a document: `text == document.text[start:end]`."""

    id: str
    doc_id: str
    text: str
    start: int
    end: int
    source: str = ""
    title: str = ""
    section: tuple[str, ...] = ()
    page: int | None = None
    tokens: int = 0

    @staticmethod
    def make_id(doc_id: str, start: int, end: int) -> str:
        return f"{doc_id}:{start}-{end}"


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved chunk with its similarity score (higher is closer)."""

    chunk: Chunk
    score: float


@dataclass(frozen=True, slots=True)
class Evidence:
    """A quote located in a source document by character offsets; score in [0, 1]."""

    doc_id: str
    chunk_id: str
    start: int
    end: int
    text: str
    score: float
    quote: str = ""  # what the model (or user) quoted, before alignment


@dataclass(frozen=True, slots=True)
class Reason:
    """A machine-readable reason code with a human sentence."""

    code: str
    message: str = ""
    start: int | None = None  # a character span of the answer the reason is about (long answers)
    end: int | None = None


@dataclass(frozen=True, slots=True)
class ClaimVerdict:
    """One claim of a long answer: `text == answer[start:end]`, with its own verdict."""

    text: str
    start: int
    end: int
    supported: bool
    score: float
    reasons: tuple[Reason, ...] = ()
    checked: str = ""  # the statement that was checked when it differs (a pronoun resolved)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The checker's decision on one pair."""

    supported: bool
    score: float
    reasons: tuple[Reason, ...] = ()
    signals: Mapping[str, float] = field(default_factory=dict)
    claims: tuple[
        ClaimVerdict, ...
    ] = ()  # per-claim verdicts of a long answer (grounded.checker.long_answers)


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a pair came from: model, prompt, cost, time, tool version."""

    model: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    prompt: str = ""
    prompt_hash: str = ""
    call_id: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0  # this row's share of its call's cost (tokens likewise)
    created: str = ""
    grounded_version: str = ""
    language: str = ""
    call_cost: float = 0.0  # the whole call's cost, shared by every row it produced


@dataclass(frozen=True, slots=True)
class QAPair:
    """A question, its answer, and the exact source text that supports it."""

    id: str
    question: str
    answer: str
    evidence: tuple[Evidence, ...] = ()
    kind: str = "factoid"  # factoid | multi_hop | unanswerable | external
    doc_ids: tuple[str, ...] = ()
    chunk_ids: tuple[str, ...] = ()
    contexts: tuple[str, ...] = ()  # inline source texts, for QA sets checked without an index
    provenance: Provenance = field(default_factory=Provenance)
    verdict: Verdict | None = None
    origin: str = "synthetic"  # synthetic | real
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @staticmethod
    def make_id(question: str, answer: str, *chunk_ids: str) -> str:
        return content_hash("\x1f".join((question.strip(), answer.strip(), *chunk_ids)))

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QAPair:
        """A pair from a canonical row (`to_dict()`) or a foreign one; ValueError names a bad field.

        Accepted besides the canonical fields: `context` (a string or a list) for `contexts`;
        `evidence` as a list of objects (any of doc_id, chunk_id, start, end, text, quote,
        score), a list of strings, a single string or a single object; `answer` as a list
        (SQuAD-style answers: the first one) or `answers` instead of `answer`.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        kw: dict[str, Any] = {}
        kw["question"] = _text(data.get("question"), "question")
        kw["answer"] = _answer_of(data)
        kw["evidence"] = tuple(_evidence_from(e) for e in _items(data.get("evidence"), "evidence"))
        contexts = data.get("contexts") if data.get("contexts") is not None else data.get("context")
        kw["contexts"] = _texts(contexts, "contexts")
        kw["doc_ids"] = _texts(data.get("doc_ids"), "doc_ids")
        kw["chunk_ids"] = _texts(data.get("chunk_ids"), "chunk_ids")
        for key in ("kind", "origin"):
            if data.get(key) is not None:
                kw[key] = _text(data[key], key)
        kw["provenance"] = _provenance_from(data.get("provenance"))
        verdict = data.get("verdict")
        kw["verdict"] = verdict_from_dict(_mapping(verdict, "verdict")) if verdict else None
        kw["metadata"] = dict(_mapping(data.get("metadata"), "metadata"))
        kw["id"] = _text(data.get("id"), "id") or QAPair.make_id(kw["question"], kw["answer"])
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Something dropped with its reasons: a pair that failed a check, or an unusable LLM reply."""

    stage: str  # generate | check | dedup
    reasons: tuple[Reason, ...]
    pair: QAPair | None = None
    raw: str = ""
    provenance: Provenance | None = None
    duplicate_of: str = ""

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


# A rejection made in this run, or a row an earlier run wrote (kept verbatim, so a rerun rewrites
# the same bytes).
Rejected = Rejection | Mapping[str, Any]


def rejected_stage(rejected: Rejected) -> str:
    """The stage that dropped it."""
    if isinstance(rejected, Rejection):
        return rejected.stage
    return str(rejected.get("stage") or "unknown")


def rejected_row(rejected: Rejected) -> dict[str, Any]:
    """A rejection as the row `rejected.jsonl` holds."""
    return rejected.to_dict() if isinstance(rejected, Rejection) else dict(rejected)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A generated pair with the passages it was written from: what the check stage judges."""

    pair: QAPair
    sources: tuple[Chunk, ...]


def count_reasons(items: Iterable[Rejection | Verdict | Mapping[str, Any]]) -> dict[str, int]:
    """Reason code -> how many items carry it (a code once per item), most common first.

    Items are rejections, verdicts, or rejection rows as read back from rejected.jsonl.
    """
    counts: Counter[str] = Counter()
    for item in items:
        if isinstance(item, Mapping):
            codes = {
                str(r.get("code", "unknown"))
                for r in item.get("reasons") or ()
                if isinstance(r, Mapping)
            }
        else:
            codes = {r.code for r in item.reasons}
        counts.update(codes)
    return dict(counts.most_common())


def _text(value: Any, key: str) -> str:
    """A scalar field as text (None -> "")."""
    if value is None:
        return ""
    if isinstance(value, (Mapping, list, tuple)):
        raise ValueError(f"{key} must be a string, got {type(value).__name__}")
    return str(value)


def _texts(value: Any, key: str) -> tuple[str, ...]:
    """A string or a list of strings as a tuple (None -> ())."""
    if value is None or value == "":
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(_text(v, key) for v in value if v is not None)
    return (_text(value, key),)


def _items(value: Any, key: str) -> list[Any]:
    """A list, or a single item as a one-item list (None or "" -> [])."""
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (str, Mapping)):
        return [value]
    raise ValueError(f"{key} must be a list, a string or an object, got {type(value).__name__}")


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{key} must be an object, got {type(value).__name__}")
    return value


def _answer_of(data: Mapping[str, Any]) -> str:
    """The answer; from SQuAD-style lists (`[{"text": ...}]`, `{"text": [...]}`) the first one."""
    value = data.get("answer") if "answer" in data else data.get("answers")
    if isinstance(value, Mapping):  # Hugging Face squad: {"text": [...], "answer_start": [...]}
        value = value.get("text")
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
        if isinstance(value, Mapping):
            value = value.get("text")
    return _text(value, "answer")


def _number(value: Any, key: str, kind: type) -> Any:
    try:
        return kind(value if value is not None else 0)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number, got {value!r}") from None


def _evidence_from(item: Any) -> Evidence:
    """Evidence from an object (missing fields default) or a bare quote string."""
    if isinstance(item, str):
        return Evidence(doc_id="", chunk_id="", start=0, end=0, text=item, score=0.0, quote=item)
    if not isinstance(item, Mapping):
        raise ValueError(f"evidence items must be strings or objects, got {type(item).__name__}")
    text = _text(item.get("text"), "evidence text") or _text(item.get("quote"), "evidence quote")
    return Evidence(
        doc_id=_text(item.get("doc_id"), "evidence doc_id"),
        chunk_id=_text(item.get("chunk_id"), "evidence chunk_id"),
        start=_number(item.get("start"), "evidence start", int),
        end=_number(item.get("end"), "evidence end", int),
        text=text,
        score=_number(item.get("score"), "evidence score", float),
        quote=_text(item.get("quote"), "evidence quote"),
    )


def _provenance_from(value: Any) -> Provenance:
    known = {f.name: f for f in fields(Provenance)}
    prov = _mapping(value, "provenance")
    kw = {k: v for k, v in prov.items() if k in known}
    try:
        return Provenance(**kw)
    except TypeError as exc:
        raise ValueError(f"provenance: {exc}") from exc


def _truth(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "supported")
    return bool(value)


def verdict_from_dict(data: Mapping[str, Any]) -> Verdict:
    """A Verdict from its `to_dict()` form; reasons may be codes or {code, message} objects."""
    if "supported" not in data:
        raise ValueError("verdict needs 'supported'")
    return Verdict(
        supported=_truth(data["supported"]),
        score=_number(data.get("score"), "verdict score", float),
        reasons=_reasons_from(data.get("reasons")),
        signals=dict(_mapping(data.get("signals"), "verdict signals")),
        claims=tuple(_claim_from(c) for c in _items(data.get("claims"), "verdict claims")),
    )


def _reasons_from(value: Any) -> tuple[Reason, ...]:
    """Reasons given as codes or {code, message, start?, end?} objects."""
    reasons = []
    for r in _items(value, "verdict reasons"):
        if isinstance(r, str):
            reasons.append(Reason(r))
            continue
        r = _mapping(r, "verdict reason")
        start, end = r.get("start"), r.get("end")
        reasons.append(
            Reason(
                _text(r.get("code"), "reason code"),
                _text(r.get("message"), "reason message"),
                None if start is None else _number(start, "reason start", int),
                None if end is None else _number(end, "reason end", int),
            )
        )
    return tuple(reasons)


def _claim_from(value: Any) -> ClaimVerdict:
    c = _mapping(value, "verdict claim")
    return ClaimVerdict(
        text=_text(c.get("text"), "claim text"),
        start=_number(c.get("start"), "claim start", int),
        end=_number(c.get("end"), "claim end", int),
        supported=_truth(c.get("supported")),
        score=_number(c.get("score"), "claim score", float),
        reasons=_reasons_from(c.get("reasons")),
        checked=_text(c.get("checked"), "claim checked"),
    )


def to_jsonable(obj: Any) -> Any:
    """Dataclasses to dicts, tuples to lists, recursively (for JSON lines)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_jsonable(v) for k, v in asdict(obj).items()}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj
