"""What a generate run plans and counts: tasks (one LLM call each), the planner over the seed
order, the summary, and what earlier runs left in the output folder (the checkpoint)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from grounded.jsonl import read_jsonl
from grounded.prompting import Prompt
from grounded.seeds import partners
from grounded.types import Chunk, QAPair, Rejected

Sink = Callable[[QAPair | Rejected], None]

MIN_YIELD = 0.25  # a later round plans for at least this share of asked pairs being kept
STOP_REACHED = "reached n"
STOP_BUDGET = "max_calls"
STOP_EXHAUSTED = "passages exhausted"
STOP_FAILING = "calls failing"
STOP_ROUNDS = "max_rounds"


def default_max_calls(n: int, pairs_per_call: int) -> int:
    """The default call budget: 4x the calls `n` needs if every pair were kept, at least 10.

    4x lets a model whose pairs the checker keeps one time in four still reach `n`; below that
    the model is the problem and more calls mostly buy rejections. The floor gives small `n`
    a few tries on other passages.
    """
    return max(10, 4 * math.ceil(n / pairs_per_call))


@dataclass(frozen=True, slots=True)
class Task:
    """One planned LLM call: the passages shown and how many pairs to ask for."""

    number: int
    chunks: tuple[Chunk, ...]
    n: int


@dataclass(slots=True)
class GenerateSummary:
    """What a generate run did and spent (`to_dict()` is the CLI's `--json`).

    kept: pairs in `qa.jsonl` counted toward `requested` (those of earlier runs included);
    candidates: pairs the model wrote in this invocation's calls (valid or not);
    cost: new spend of this invocation; cost_total: spend on every call behind this folder.
    """

    out: str
    model: str
    prompt: str
    prompt_hash: str
    requested: int
    max_calls: int = 0
    stopped: str = ""
    planned_calls: int = 0
    calls: int = 0
    rounds: int = 0
    candidates: int = 0
    kept: int = 0
    rejected: int = 0
    surplus: int = 0
    written: int = 0
    already_written: int = 0
    duplicates: int = 0
    invalid_replies: int = 0
    retried_invalid: int = 0
    llm_calls: int = 0
    cached_calls: int = 0
    failed_calls: int = 0
    retries: int = 0
    cost: float = 0.0
    cost_total: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    checked: bool = False
    verify: str = "off"  # off | roundtrip | judge: the LLM verifier that ran after the checker
    reader_calls: int = 0  # round-trip reader requests (cached and repair requests included)
    unverified: int = 0  # kept pairs the reader could not be read for (reason reader_unavailable)
    dry_run: bool = False
    estimated_cost: float | None = None
    estimated_prompt_tokens: int = 0
    estimated_completion_tokens: int = 0
    elapsed_s: float = 0.0
    check_seconds: float = 0.0  # of elapsed_s, time in the check stage
    errors: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def calls_per_kept_pair(self) -> float | None:
        # every request through the generation LLM: generation, repairs, reader and judge calls
        total = self.llm_calls + self.cached_calls
        return round(total / self.kept, 3) if self.kept else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["calls_per_kept_pair"] = self.calls_per_kept_pair
        return data


@dataclass(slots=True)
class _Written:
    """What earlier runs left in the output files."""

    keys: set[str]  # ids of pairs and keys of reply-level rejections
    kept: set[str]  # ids of kept pairs: they count toward n
    call_costs: dict[str, float]  # call id -> what the call cost

    @classmethod
    def read(cls, qa_path: Path, rejected_path: Path, *, sink: Sink | None = None) -> _Written:
        """What the files hold; each row also goes to `sink` (kept rows as QAPairs)."""
        out = cls(set(), set(), {})
        for path, kept in ((qa_path, True), (rejected_path, False)):
            if not path.exists():
                continue
            for row in read_jsonl(path):
                out._add(row, kept=kept)
                if sink is not None:
                    sink(QAPair.from_dict(row) if kept else row)
        return out

    def _add(self, row: dict[str, Any], *, kept: bool) -> None:
        pair = row.get("pair") if not kept else row
        prov = row.get("provenance") or (pair or {}).get("provenance") or {}
        if isinstance(pair, dict) and pair.get("id"):
            self.keys.add(str(pair["id"]))
            if kept:
                self.kept.add(str(pair["id"]))
        elif not kept:
            self.keys.add(_reply_key(str(prov.get("call_id", "")), str(row.get("raw", ""))))
        call = str(prov.get("call_id") or "")
        if call:
            # Rows written before costs were apportioned carry the whole call's cost in `cost`.
            spent = max(float(prov.get("call_cost") or 0.0), float(prov.get("cost") or 0.0))
            self.call_costs[call] = max(spent, self.call_costs.get(call, 0.0))


def _reply_key(call_id: str, raw: str) -> str:
    """The key of a rejection that has no pair: its call and the part of the reply it was."""
    return f"call:{call_id}:{hashlib.sha256(raw.encode('utf-8')).hexdigest()[:16]}"


class _Planner:
    """Hands out tasks over the seed order; later rounds continue where the last one stopped.

    Every task asks for the same number of pairs (`pairs_per_call`, more when there are fewer
    passages than calls), whatever the round, so a passage's call is the same request (the same
    cache entry) however many pairs are still missing.
    """

    def __init__(
        self, index: Any, prompt: Prompt, seeds: Sequence[Chunk], pairs_per_call: int, n: int
    ) -> None:
        self.index = index
        self.prompt = prompt
        self.seeds = seeds
        # Fewer passages than calls: ask each passage for more pairs instead of repeating it.
        self.size = max(pairs_per_call, math.ceil(n / len(seeds)))
        self.pos = 0
        self.count = 0

    def plan(self, pairs: int, *, limit: int, yield_rate: float = 1.0) -> list[Task]:
        """Tasks for `pairs` more kept pairs at the expected keep rate, at most `limit` of them."""
        remaining_seeds = len(self.seeds) - self.pos
        if pairs <= 0 or remaining_seeds <= 0 or limit <= 0:
            return []
        calls = min(limit, math.ceil(pairs / (self.size * max(MIN_YIELD, min(1.0, yield_rate)))))
        tasks: list[Task] = []
        extra = self.prompt.spec.sources - 1
        while len(tasks) < calls and self.pos < len(self.seeds):
            seed_chunk = self.seeds[self.pos]
            self.pos += 1
            others = partners(self.index, seed_chunk, extra) if extra else []
            if len(others) < extra:
                continue  # no related passage: this seed cannot carry a multi-hop question
            tasks.append(Task(self.count, (seed_chunk, *others), self.size))
            self.count += 1
        return tasks
