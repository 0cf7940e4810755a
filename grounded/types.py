"""Core data types shared by every stage: small, frozen, JSON-serialisable."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
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


@dataclass(frozen=True, slots=True)
class Verdict:
    """The checker's decision on one pair."""

    supported: bool
    score: float
    reasons: tuple[Reason, ...] = ()
    signals: Mapping[str, float] = field(default_factory=dict)


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
    cost: float = 0.0
    created: str = ""
    grounded_version: str = ""
    language: str = ""


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
        known = {f.name for f in fields(cls)}
        kw: dict[str, Any] = {k: v for k, v in data.items() if k in known}
        kw["evidence"] = tuple(_evidence_from(e) for e in data.get("evidence") or ())
        for key in ("doc_ids", "chunk_ids", "contexts"):
            kw[key] = tuple(data.get(key) or ())
        prov = data.get("provenance") or {}
        pknown = {f.name for f in fields(Provenance)}
        kw["provenance"] = Provenance(**{k: v for k, v in prov.items() if k in pknown})
        kw["verdict"] = verdict_from_dict(data["verdict"]) if data.get("verdict") else None
        kw["metadata"] = dict(data.get("metadata") or {})
        kw.setdefault("id", QAPair.make_id(str(kw.get("question", "")), str(kw.get("answer", ""))))
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


def _evidence_from(data: Mapping[str, Any]) -> Evidence:
    known = {f.name for f in fields(Evidence)}
    return Evidence(**{k: v for k, v in data.items() if k in known})


def verdict_from_dict(data: Mapping[str, Any]) -> Verdict:
    return Verdict(
        supported=bool(data["supported"]),
        score=float(data.get("score", 0.0)),
        reasons=tuple(Reason(**r) for r in data.get("reasons") or ()),
        signals=dict(data.get("signals") or {}),
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
