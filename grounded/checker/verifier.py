"""A small learned verifier: does the passage answer this question with this answer?

A cross-encoder over ``question [SEP] answer`` and an evidence window (the words around the
answer in its source, the answer marked « »). It is all-MiniLM-L6-v2 (the embedder grounded
already ships) whose lower layers are used as they are and whose top layers and a one-logit head
were fine-tuned by ``training/train_verifier.py``. Only those top layers go in the package, as fp16
safetensors in ``grounded/models/verifier/`` (about 9 MB) with a model card, and only when a
retrain beats the hand signals on held-out data (none ship today: `Verifier.available()` is False
and the checker runs without it); the lower layers load from the bundled MiniLM package, so
nothing downloads.

`VerifierCheck` is the model as a check: a ModelCheck (signal `ver`, the verifier's
probability), weighed by the "qa+ver" calibration, which is sign-constrained like every signal:
a yes can only raise the score, a no only lower it. It runs in qa mode on the pairs the cheap
checks have not already rejected, batched and length-sorted.

    >>> v = Verifier.load()  # doctest: +SKIP
    >>> v.probabilities(
    ...     [v.item("How many seats?", "40", "The council has 40 seats.")]
    ... )  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grounded.checker.context import CheckResult, Context
from grounded.errors import CheckError, MissingDependencyError
from grounded.types import Reason

MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "verifier"
WEIGHTS = "verifier.safetensors"
CONFIG = "verifier.json"
# Words of context kept on each side of the answer in the evidence window.
WINDOW_WORDS = 32
MAX_LENGTH = 128
OPEN, CLOSE = "«", "»"

_WORD = re.compile(r"\S+")
_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Item:
    """One pair as the verifier reads it."""

    question: str
    answer: str
    window: str


def locate(context: str, answer: str) -> tuple[int, int] | None:
    """Character span of `answer` in `context`: exact, then case-insensitive, then the best fuzzy
    alignment (rapidfuzz) when it is close; None when the answer is not in the context."""
    answer = answer.strip()
    if not answer or not context:
        return None
    at = context.find(answer)
    if at < 0:
        at = context.lower().find(answer.lower())
    if at >= 0:
        return at, at + len(answer)
    from rapidfuzz import fuzz

    hit = fuzz.partial_ratio_alignment(answer.lower(), context.lower())
    if hit is not None and hit.score >= 90 and hit.dest_end > hit.dest_start:
        return hit.dest_start, hit.dest_end
    return None


def _best_region(context: str, words: Sequence[re.Match[str]], query: str, width: int) -> int:
    """Index of the first word of the `width`-word region sharing most words with `query`."""
    wanted = {t.lower() for t in _TOKEN.findall(query) if len(t) > 2}
    if not wanted or len(words) <= width:
        return 0
    hits = [int(bool({t.lower() for t in _TOKEN.findall(m.group())} & wanted)) for m in words]
    best, best_at, run = -1, 0, sum(hits[:width])
    for i in range(len(words) - width + 1):
        if i:
            run += hits[i + width - 1] - hits[i - 1]
        if run > best:
            best, best_at = run, i
    return best_at


def evidence_window(
    context: str, answer: str, question: str = "", *, words: int = WINDOW_WORDS
) -> str:
    """The words around the answer in `context`, the answer marked « »; where the answer is not in
    the context, the region that shares most words with the answer and question, unmarked."""
    span = locate(context, answer)
    toks = list(_WORD.finditer(context))
    if not toks:
        return ""
    if span is None:
        first = _best_region(context, toks, f"{answer} {question}", 2 * words)
        chosen = toks[first : first + 2 * words]
        return context[chosen[0].start() : chosen[-1].end()]
    return window_at(context, *span, words=words)


def window_at(context: str, start: int, end: int, *, words: int = WINDOW_WORDS) -> str:
    """`words` words either side of context[start:end], that span marked « »."""
    toks = list(_WORD.finditer(context))
    before = [m for m in toks if m.end() <= start][-words:]
    after = [m for m in toks if m.start() >= end][:words]
    left = context[before[0].start() : start] if before else ""
    right = context[end : after[-1].end()] if after else ""
    return f"{left}{OPEN}{context[start:end]}{CLOSE}{right}".strip()


def first_text(answer: str, question: str) -> str:
    """The first segment of the cross-encoder's input."""
    return f"{question.strip()} [SEP] {answer.strip()}"


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a dependency
        raise MissingDependencyError("the learned verifier", "'torch==2.13.0'") from exc
    return torch


def pool_masks(
    input_ids: Any, token_type_ids: Any, attention_mask: Any, marks: tuple[int, int]
) -> Any:
    """Per row, float masks (batch, 3, length) of the tokens the head pools: the question (first
    segment before its inner [SEP]), the answer where it stands in the window (between the « »
    marks; the answer of the first segment when the window does not hold it), and the window."""
    torch = _torch()
    sep = (input_ids == SEP_ID) & (token_type_ids == 0)
    first_sep = sep.float().cumsum(1)
    seg_a = (token_type_ids == 0) & (attention_mask == 1)
    question = seg_a & (first_sep == 0) & (input_ids != CLS_ID)
    answer_a = seg_a & (first_sep == 1) & ~sep
    opened = (input_ids == marks[0]).float().cumsum(1)
    closed = (input_ids == marks[1]).float().cumsum(1)
    window = (token_type_ids == 1) & (attention_mask == 1) & (input_ids != SEP_ID)
    inside = window & (opened > closed) & (input_ids != marks[0])
    has_mark = inside.any(1, keepdim=True)
    answer = torch.where(has_mark, inside, answer_a)
    return torch.stack([question, answer, window], 1).float()


SEP_ID, CLS_ID = 102, 101  # bert-base-uncased ids, MiniLM's vocabulary


def build_net(base: Any, trainable_from: int) -> Any:
    """The verifier network around a MiniLM `BertModel`: its layers below `trainable_from` as
    they are, the rest, and a head over the [CLS] state and the mean states of the question, of
    the answer in its window and of the window (with their products: "is this span what the
    question asks for")."""
    torch = _torch()
    nn = torch.nn
    hidden = base.config.hidden_size

    class VerifierNet(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.base = base
            self.split = trainable_from
            self.dropout = nn.Dropout(0.1)
            self.head = nn.Sequential(
                nn.Linear(6 * hidden, hidden), nn.GELU(), nn.Dropout(0.1), nn.Linear(hidden, 1)
            )

        @staticmethod
        def additive_mask(mask: Any) -> Any:
            return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min

        def lower(self, input_ids: Any, token_type_ids: Any, mask: Any) -> Any:
            """Hidden states after the layers below the split (frozen in training)."""
            h = self.base.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            ext = self.additive_mask(mask)
            for layer in self.base.encoder.layer[: self.split]:
                out = layer(h, attention_mask=ext)
                h = out[0] if isinstance(out, tuple) else out
            return h

        def upper(self, h: Any, mask: Any, pools: Any) -> Any:
            """One logit per row from the hidden states after the split and the pool masks."""
            ext = self.additive_mask(mask)
            for layer in self.base.encoder.layer[self.split :]:
                out = layer(h, attention_mask=ext)
                h = out[0] if isinstance(out, tuple) else out
            pooled = torch.einsum("bpl,bld->bpd", pools, h) / pools.sum(2, keepdim=True).clamp(
                min=1.0
            )
            q, a, w = pooled[:, 0], pooled[:, 1], pooled[:, 2]
            feats = torch.cat([h[:, 0], q, a, w, q * a, (q - a).abs()], -1)
            return self.head(self.dropout(feats)).squeeze(-1)

        def forward(
            self, input_ids: Any, token_type_ids: Any, attention_mask: Any, pools: Any
        ) -> Any:
            return self.upper(
                self.lower(input_ids, token_type_ids, attention_mask), attention_mask, pools
            )

        def shipped_state(self) -> dict[str, Any]:
            """The parameters that differ from the bundled MiniLM: top layers and head."""
            keep = tuple(
                f"base.encoder.layer.{i}." for i in range(self.split, len(self.base.encoder.layer))
            )
            return {
                k: v
                for k, v in self.state_dict().items()
                if k.startswith(keep) or k.startswith("head.")
            }

    return VerifierNet()


def marks(tokenizer: Any) -> tuple[int, int]:
    """Token ids of the answer marks « »."""
    opening, closing = tokenizer.convert_tokens_to_ids([OPEN, CLOSE])
    return int(opening), int(closing)


def load_base() -> tuple[Any, Any]:
    """The bundled MiniLM tokenizer and `BertModel`, read from its package folder, offline."""
    from transformers import AutoModel, AutoTokenizer

    from grounded import offline
    from grounded.embed import minilm_path

    offline.configure()
    path = str(minilm_path())
    return AutoTokenizer.from_pretrained(path, local_files_only=True), AutoModel.from_pretrained(
        path, local_files_only=True
    )


def encode(
    tokenizer: Any, items: Sequence[Item], *, max_length: int = MAX_LENGTH
) -> dict[str, Any]:
    """Token ids for a batch, padded to its longest row."""
    return tokenizer(
        [first_text(i.answer, i.question) for i in items],
        [i.window for i in items],
        truncation="longest_first",
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    )


class Verifier:
    """The shipped verifier: `probabilities(items)` in [0, 1], batched and length-sorted."""

    def __init__(
        self, tokenizer: Any, net: Any, config: dict[str, Any], *, batch_size: int = 32
    ) -> None:
        self.tokenizer = tokenizer
        self.net = net.eval()
        self.config = config
        self.batch_size = batch_size
        self.max_length = int(config.get("max_length", MAX_LENGTH))
        self.window_words = int(config.get("window_words", WINDOW_WORDS))
        self.marks = marks(tokenizer)

    @staticmethod
    def available(model_dir: Path | None = None) -> bool:
        """True when the weights ship in this install (or are in `model_dir`)."""
        model_dir = MODEL_DIR if model_dir is None else model_dir
        return (model_dir / WEIGHTS).is_file() and (model_dir / CONFIG).is_file()

    @classmethod
    def load(cls, model_dir: Path | None = None, **kw: Any) -> Verifier:
        """The verifier from `model_dir` (default: the shipped one), its lower layers from the
        bundled MiniLM."""
        model_dir = MODEL_DIR if model_dir is None else model_dir
        if not cls.available(model_dir):
            raise CheckError(
                f"no verifier weights in {model_dir}",
                hint="build them with: python training/train_verifier.py, or run with --verifier off",
            )
        torch = _torch()
        from safetensors.torch import load_file

        config = json.loads((model_dir / CONFIG).read_text(encoding="utf-8"))
        tokenizer, base = load_base()
        net = build_net(base, int(config["trainable_from"]))
        state = {k: v.float() for k, v in load_file(str(model_dir / WEIGHTS)).items()}
        missing = set(net.shipped_state()) - set(state)
        if missing:
            raise CheckError(
                f"verifier weights in {model_dir} lack {len(missing)} tensors",
                hint="rebuild them with: python training/train_verifier.py",
            )
        net.load_state_dict(state, strict=False)
        torch.set_grad_enabled(False)
        return cls(tokenizer, net, config, **kw)

    def item(self, question: str, answer: str, context: str) -> Item:
        """An `Item` with the evidence window cut from `context` as in training."""
        return Item(
            question, answer, evidence_window(context, answer, question, words=self.window_words)
        )

    def probabilities(self, items: Sequence[Item]) -> list[float]:
        """P(the window answers the question with the answer) for each item, in order."""
        torch = _torch()
        order = sorted(
            range(len(items)), key=lambda i: len(items[i].window) + len(items[i].question)
        )
        out = [0.0] * len(items)
        with torch.inference_mode():
            for at in range(0, len(order), self.batch_size):
                idx = order[at : at + self.batch_size]
                b = encode(self.tokenizer, [items[i] for i in idx], max_length=self.max_length)
                pools = pool_masks(
                    b["input_ids"], b["token_type_ids"], b["attention_mask"], self.marks
                )
                probs = torch.sigmoid(
                    self.net(b["input_ids"], b["token_type_ids"], b["attention_mask"], pools)
                )
                for i, p in zip(idx, probs.tolist(), strict=True):
                    out[i] = float(p)
        return out


# --- the model as a check ------------------------------------------------------------------------

# The verifier's probability below which a pair gets `question_does_not_ask_for_answer`.
NO_BELOW: float = 0.5


class VerifierCheck:
    """The shipped cross-encoder's probability that the question asks for the answer."""

    name = "verifier"
    signal = "ver"
    modes: frozenset[str] = frozenset({"qa"})
    min_weight = 0.0
    # policy "keepable": pairs within `band` of the threshold or above it, not blocked (a yes can
    # raise a pair by about this much)
    band = 0.15
    neutral: dict[
        str, float
    ] = {}  # the "qa" model has no `ver`: pairs it did not read keep that model

    def __init__(
        self, verifier: Any = None, *, no_below: float = NO_BELOW, cache_size: int = 50_000
    ) -> None:
        self._verifier = verifier
        self.no_below = no_below
        self.cache_size = cache_size
        self._cache: dict[Any, float] = {}  # Item -> probability
        self._pending: dict[int, Any] = {}  # id(ctx) -> Item, for the batch being prefetched

    @property
    def verifier(self) -> Any:
        if self._verifier is None:
            self._verifier = Verifier.load()
        return self._verifier

    def item(self, ctx: Context) -> Any:
        """What the verifier reads for one pair: the question, the answer and the window around
        the answer in the first source that holds it (else the sources' best region)."""
        texts = [c.text for c in ctx.sources if c.text.strip()] or ctx.support_texts
        question, answer = ctx.pair.question, ctx.pair.answer
        words = self.verifier.window_words
        for text in texts:
            span = locate(text, answer)
            if span is not None:
                return Item(question, answer, window_at(text, *span, words=words))
        return Item(
            question, answer, evidence_window(" ".join(texts), answer, question, words=words)
        )

    def prefetch(self, ctxs: Sequence[Context]) -> None:
        """Score every pair not yet cached in one batched call."""
        # the batch's items, kept for `run` (its contexts are alive until then: ids are unique)
        self._pending = {id(c): self.item(c) for c in ctxs}
        todo = list(dict.fromkeys(i for i in self._pending.values() if i not in self._cache))
        if not todo:
            return
        if len(self._cache) + len(todo) > self.cache_size:
            self._cache.clear()
        probs = self.verifier.probabilities(todo)
        self._cache.update(zip(todo, probs, strict=True))

    def run(self, ctx: Context) -> CheckResult:
        res = CheckResult()
        if not ctx.pair.question.strip() or not ctx.pair.answer.strip():
            return res
        item = self._pending.pop(id(ctx), None) or self.item(ctx)
        if item not in self._cache:
            self.prefetch([ctx])
        p = self._cache[item]
        res.signals[self.signal] = p
        if p < self.no_below:
            res.reasons.append(
                Reason(
                    "question_does_not_ask_for_answer",
                    f"the learned verifier reads the evidence as not answering the question "
                    f"with this answer (p={p:.2f})",
                )
            )
        return res
