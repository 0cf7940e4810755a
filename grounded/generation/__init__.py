"""Generate grounded QA pairs from an index: seed chunks -> LLM -> aligned evidence -> checked.

Generation makes candidates (pairs whose quotes were found in the passages, as
`grounded.types.Candidate`); each call's candidates go through the check stage
(`grounded.stages.check.CheckStage`, in a worker when the executor has them) before they are written.

`n` is the number of kept pairs wanted: calls run in rounds on new passages until `n` pairs are
kept, the call budget (`max_calls`) is spent, the passages run out, or a whole round of calls
fails. Each call's pairs are written as soon as the call and those planned before it have
finished (`qa.jsonl`, `rejected.jsonl`), so the rows, and which pairs fill `n` (the first kept in
task order), never depend on which call finished first; every reply is cached in SQLite as it
arrives, while earlier calls' candidates are still being checked. A rerun, after success or
`kill -9`, counts the pairs already written toward `n`, replays cached calls for free and skips
pairs already written, so nothing is paid for twice, lost, duplicated, or kept beyond `n`.
"""

from grounded.generation.api import DEFAULT_TIMEOUT_S, generate, warm_llm
from grounded.generation.evidence import (
    MIN_QUOTE_SCORE,
    answer_candidates,
    constrain_schema,
    holds,
    locate,
    locate_answer,
    sentences,
)
from grounded.generation.plan import GenerateSummary, Task, default_max_calls
from grounded.generation.run import MAX_INVALID_RETRIES

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_INVALID_RETRIES",
    "MIN_QUOTE_SCORE",
    "GenerateSummary",
    "Task",
    "answer_candidates",
    "constrain_schema",
    "default_max_calls",
    "generate",
    "holds",
    "locate",
    "locate_answer",
    "sentences",
    "warm_llm",
]
