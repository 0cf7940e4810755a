"""The stages of a run, one file each, one shape: `run(records, ctx) -> Iterator[records]`.

    ingest    Path                -> IngestSummary     (load -> chunk -> embed -> index)
    generate  IngestSummary       -> QAPair | Rejected (each call's candidates through the check
                                                        and verify stages, then checkpointed)
    check     Candidate           -> QAPair | Rejection
    verify    Candidate           -> QAPair | Rejection (the model answers its own questions)
    dedup     QAPair | Rejected   -> QAPair | Rejected (duplicates become rejections)
    health    QAPair | Rejected   -> the same records   (diversity, coverage to the summary)
    report    QAPair | Rejected   -> report.html        (qa.jsonl, rejected.jsonl, the report)

Records pass between stages in memory; disk holds only checkpoints (the LLM call cache, the
generate stage's rows, the index manifest) and outputs. `Context` carries what the stages
share: the drop ledger, the run folder, the executor, the index and its embedder.
`grounded.pipeline.run` is the stage list and one loop over it.
"""

from grounded.stages.base import Ledger, Stage, StageCounts, split
from grounded.stages.check import CheckStage, NoCheck, check_batch
from grounded.stages.context import Context, RunSummary
from grounded.stages.dedup import DedupStage
from grounded.stages.generate import GenerateStage
from grounded.stages.health import HealthStage
from grounded.stages.ingest import IngestStage
from grounded.stages.report import ReportStage
from grounded.stages.verify import VerifyStage

__all__ = [
    "CheckStage",
    "Context",
    "DedupStage",
    "GenerateStage",
    "HealthStage",
    "IngestStage",
    "Ledger",
    "NoCheck",
    "ReportStage",
    "RunSummary",
    "Stage",
    "StageCounts",
    "VerifyStage",
    "check_batch",
    "split",
]
