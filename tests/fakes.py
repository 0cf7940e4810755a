"""Test fakes: an LLM transport registered for a model prefix, an in-memory index, a checker.

The fake LLM queues replies and records calls (llm's MockModel style). A queued item is a reply
text, an exception (instance or class) to raise once, or a callable `messages -> text`. When the
queue is empty the `responder` answers. Other engineers may import these.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from grounded import offline

offline.configure()

import litellm  # noqa: E402

from grounded.llm import Request, Response, register_transport  # noqa: E402
from grounded.types import Chunk, Hit, Reason, Verdict  # noqa: E402

_PASSAGE = re.compile(r'<passage n="(\d+)">\n(.*?)\n</passage>', re.S)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]")


def rate_limit(model: str = "fake") -> Exception:
    return litellm.RateLimitError(message="429 slow down", llm_provider="fake", model=model)


def server_error(model: str = "fake") -> Exception:
    return litellm.InternalServerError(message="500 boom", llm_provider="fake", model=model)


def timeout_error(model: str = "fake") -> Exception:
    return litellm.Timeout(message="timed out", llm_provider="fake", model=model)


def passages_of(messages: Sequence[dict[str, Any]]) -> list[str]:
    """The passages shown in the last user message of a generation prompt."""
    last = next(m for m in reversed(messages) if m["role"] == "user")
    return [text for _, text in _PASSAGE.findall(str(last["content"]))]


def requested_n(messages: Sequence[dict[str, Any]]) -> int:
    last = next(m for m in reversed(messages) if m["role"] == "user")
    m = re.search(r"Write (\d+) question", str(last["content"]))
    return int(m.group(1)) if m else 1


def quoting_responder(messages: Sequence[dict[str, Any]]) -> str:
    """A well-behaved model: one pair per sentence, quoting each sentence exactly."""
    passages = passages_of(messages)
    n = requested_n(messages)
    pairs = []
    sentences = [s.strip() for p in passages for s in _SENTENCE.findall(p) if len(s.split()) >= 3]
    for s in sentences[:n]:
        words = s.rstrip(".!?").split()
        pairs.append(
            {
                "quote": s,
                "answer": " ".join(words[-2:]),
                "question": f"What completes the statement '{' '.join(words[:-2])}'?",
            }
        )
    if len(passages) > 1 and pairs:
        # Multi-hop prompts: quote one sentence of each passage.
        firsts = [(_SENTENCE.findall(p) or [p])[0].strip() for p in passages]
        pairs = [{**pairs[0], "quote": None, "quotes": firsts}]
    return json.dumps({"pairs": pairs})


class FakeLLM:
    """A transport (`grounded.llm.Transport`) whose replies come from a queue; every call is recorded."""

    def __init__(
        self,
        replies: Iterable[Any] = (),
        *,
        responder: Callable[[list[dict[str, Any]]], str] | None = quoting_responder,
        delay: float = 0.0,
        log: str | Path | None = None,
    ) -> None:
        self.queue: deque[Any] = deque(replies)
        self.responder = responder
        self.delay = delay
        self.log = Path(log) if log else None
        self.calls: list[dict[str, Any]] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def queue_reply(self, *items: Any) -> None:
        self.queue.extend(items)

    def _next(self, request: Request) -> Response:
        messages = [dict(m) for m in request.messages]
        with self._lock:
            params = request.sampling.params()
            if request.response_format is not None:
                params["response_format"] = dict(request.response_format)
            record = {"model": request.model, "messages": messages, "optional_params": params}
            self.calls.append(record)
            if self.log is not None:
                with self.log.open("a", encoding="utf-8") as fh:
                    line = {"model": request.model, "last": messages[-1]["content"]}
                    fh.write(json.dumps(line) + "\n")
            item = self.queue.popleft() if self.queue else None
        if item is None:
            if self.responder is None:
                raise AssertionError("FakeLLM: no reply queued")
            item = self.responder
        if isinstance(item, type) and issubclass(item, BaseException):
            raise item("fake failure")
        if isinstance(item, BaseException):
            raise item
        text = item(messages) if callable(item) else str(item)
        prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in messages)
        return Response(text, prompt_tokens=prompt_tokens, completion_tokens=len(text.split()))

    async def handle_request(self, request: Request) -> Response:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(self.delay)  # a real transport yields to the loop, even at 0
            return self._next(request)
        finally:
            self.active -= 1


def register_fake(fake: FakeLLM, provider: str = "fake") -> str:
    """Send `provider/...` models to `fake` (a transport); returns a model string for it."""
    register_transport(provider, lambda: fake)
    return f"{provider}/test-model"


# --- an in-memory index with the Index interface ------------------------------------------------


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2}


class FakeIndex:
    """`grounded.index.Index`'s read interface over a list of chunks; similarity = word Jaccard."""

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        self._chunks = list(chunks)
        self._by_id = {c.id: c for c in self._chunks}

    @classmethod
    def from_texts(cls, docs: dict[str, Sequence[str]]) -> FakeIndex:
        """`{doc_id: [chunk text, ...]}`; offsets as if chunks were joined by blank lines."""
        chunks = []
        for doc_id, texts in docs.items():
            pos = 0
            for t in texts:
                chunks.append(
                    Chunk(
                        id=Chunk.make_id(doc_id, pos, pos + len(t)),
                        doc_id=doc_id,
                        text=t,
                        start=pos,
                        end=pos + len(t),
                        source=f"{doc_id}.txt",
                        title=doc_id,
                    )
                )
                pos += len(t) + 2
        return cls(chunks)

    def chunks(self) -> Iterator[Chunk]:
        return iter(self._chunks)

    def get_chunks(self, ids: Sequence[str]) -> list[Chunk]:
        return [self._by_id[i] for i in ids if i in self._by_id]

    def documents(self) -> list[dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for c in self._chunks:
            d = out.setdefault(
                c.doc_id, {"doc_id": c.doc_id, "sources": [c.source], "title": c.title, "chunks": 0}
            )
            d["chunks"] += 1
        return list(out.values())

    def _score(self, a: str, b: str) -> float:
        wa, wb = _words(a), _words(b)
        return len(wa & wb) / max(1, len(wa | wb))

    def search(self, query: str, k: int = 5) -> list[Hit]:
        hits = [Hit(c, self._score(query, c.text)) for c in self._chunks]
        return sorted(hits, key=lambda h: -h.score)[:k]

    def similar(self, chunk: Chunk, k: int = 5) -> list[Hit]:
        hits = [Hit(c, self._score(chunk.text, c.text)) for c in self._chunks if c.id != chunk.id]
        return sorted(hits, key=lambda h: -h.score)[:k]


class FakeChecker:
    """Rejects pairs whose question contains `reject_word`; records what it saw."""

    def __init__(self, reject_word: str = "REJECTME") -> None:
        self.reject_word = reject_word
        self.seen: list[str] = []

    def check(self, pair: Any, sources: Sequence[Chunk]) -> Verdict:
        self.seen.append(pair.id)
        if self.reject_word in pair.question:
            return Verdict(False, 0.0, (Reason("low_support", "fake checker said no"),))
        return Verdict(True, 1.0)


# The small pipeline corpus (tests/data/pipeline) and a careful model for it: the pairs of
# replies.json whose sentences the prompt shows (at most 3), plus one invented quote per call.
PIPELINE_DATA = Path(__file__).parent / "data" / "pipeline"
PIPELINE_DOCS = PIPELINE_DATA / "docs"
PIPELINE_REPLIES: dict[str, Any] = json.loads((PIPELINE_DATA / "replies.json").read_text())
INVENTED_PAIR = {
    "quote": "The Eiffel Tower is in Paris.",
    "answer": "Paris",
    "question": "Where is the Eiffel Tower?",
}


def pipeline_responder(messages: Sequence[dict[str, Any]]) -> str:
    """Pairs for the pipeline corpus's sentences shown in `messages`, plus INVENTED_PAIR."""
    text = "\n".join(passages_of(messages))
    pairs = [pair for key, pair in PIPELINE_REPLIES.items() if key in text]
    return json.dumps({"pairs": pairs[:3] + [INVENTED_PAIR]})


def check_rows(
    tmp_path: Path, rows: Sequence[dict[str, Any]]
) -> tuple[dict, list[dict], list[dict]]:
    """`grounded check` (MiniLM off, --json) on JSONL rows: (summary, kept rows, rejected rows)."""
    from click.testing import CliRunner

    from grounded.cli import main

    path = tmp_path / "qa.jsonl"
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["check", str(path), "--out", str(out), "--semantic", "off", "--json"]
    )
    assert result.exit_code == 0, result.output

    def read(name: str) -> list[dict]:
        return [json.loads(x) for x in (out / name).read_text().splitlines() if x.strip()]

    return json.loads(result.output), read("qa.jsonl"), read("rejected.jsonl")
