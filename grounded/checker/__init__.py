"""The faithfulness checker: drop QA pairs whose quotes, answers or questions the sources do not support.

A `Checker` maps one pair and its source chunks to a `Verdict`. The default checker is a
pipeline of small checks, each returning reason codes and signals:

- `quotes`   evidence quotes must be found in the sources (re-verified by offsets when given);
- `support`  the answer's content words, numbers, dates and names must be in the cited evidence
             (or in the sources when there is no evidence); contradictions with the evidence
             window the claim aligns with (`negation_mismatch`, `number_mismatch`,
             `date_mismatch`, `unit_mismatch`, `entity_mismatch`; see `contradictions`);
- `semantic` MiniLM similarity between the answer statement and the closest source sentences;
- `question` it is a question, it does not contain its own answer, it is about the evidence;
- `fit`      the answer ANSWERS the question (QAFitCheck, mode "qa" only): its form matches the
             question's expected type (`answer_type_mismatch`), the question names something
             specific (`vague_question`), the question's terms occur around the answer in the
             evidence (`answer_not_near_question_terms`, and the q_near* signals);
- `answer_type` spaCy (`en_core_web_sm`) types the question's expected answer from its parse
             (wh-word and head noun: "How many *seats*") and the answer by its entity label in
             the evidence sentence: `answer_type_mismatch`, `focus_not_near_answer`, and the
             type_agree / type_conflict / focus_near signals (mode "qa", English only);
- `instructions` sources that address the model (`instruction_in_evidence`, a signal) and answers
             that only echo such an instruction (`answer_echoes_instruction`, blocking);
- `judge`    optional LLM judge (claim decomposition + per-claim verdict), cached.

The signals are combined by a logistic model into a calibrated score in [0, 1] (`calibration`:
one model per mode, "qa" for an answer read with its question and "claim" for a standalone
statement, `answer_only=True`; the weights, thresholds and the data they were fitted on are
package data, grounded/checker/calibration.json, written by `benchmarks/fit_checker.py --write`),
each weight bounded to its sign (SIGNS: a support signal can only raise the score, a mismatch
signal only lower it). Model-backed checks (`ModelCheck`: MiniLM's `semantic` on pairs near the
threshold, spaCy's `answer_type` on pairs the cheap checks have not rejected) run batched and
rescore their pairs with the model fitted with their signals. A pair is
kept when its score reaches the threshold and no blocking reason (BLOCKING) was raised; override
the threshold with `default_checker(threshold=...)` or `grounded check --threshold`.

Modules: `context` (one pair in its sources, shared analysis), one module per check (`quotes`,
`support`, `contradictions`, `semantic`, `question`, `fit`, `answer_type`, `instructions`, `judge`),
`calibration` (the fitted models), `scoring` (PipelineChecker, default_checker), `stream`
(`check` over many pairs). Text analysis is `grounded.text`; file I/O is `grounded.checkfile`.

Unanswerable pairs (kind "unanswerable", or an answer saying the documents do not tell) are
kept when the answer is a refusal and the sources do not answer the question: no source window
(up to 3 sentences) holds every content word of the question, no source defines a one-word
question's term ("What is petrology?" / "Petrology is ..."), and the model's own non-refusal
answer (the pair's answer, or metadata "model_answer") does not pass the checks as a factoid;
otherwise `answerable_in_sources` / `not_a_refusal`.

Other languages: checks built on English word lists (question words, question-answer fit,
negation, names) abstain on a pair whose provenance language, or a cheap script/stopword test,
says it is not English; the verdict then carries `checks_skipped_language` (not blocking).

    >>> checker = default_checker()  # doctest: +SKIP
    >>> for pair, verdict in check(pairs, index="out/index"):  # doctest: +SKIP
    ...     print(pair.question, verdict.supported, verdict.score)
"""

from __future__ import annotations

from grounded.checker.answer_type import AnswerTypeCheck
from grounded.checker.calibration import (
    CALIBRATION,
    DEFAULT_THRESHOLD,
    DEFAULT_THRESHOLDS,
    FEATURES,
    QA_FEATURES,
    SIGNS,
    Calibration,
    load_calibration,
)
from grounded.checker.context import (
    Check,
    Checker,
    CheckResult,
    Context,
    ModelCheck,
    says_not_in_sources,
)
from grounded.checker.fit import QAFitCheck
from grounded.checker.instructions import InstructionCheck
from grounded.checker.judge import JudgeCheck
from grounded.checker.question import QuestionCheck
from grounded.checker.quotes import QuoteCheck
from grounded.checker.registry import (
    ENTRY_POINT_GROUP,
    CheckSpec,
    blocking_codes,
    checks,
    register_check,
    unregister_check,
)
from grounded.checker.scoring import BLOCKING, PipelineChecker, default_checker
from grounded.checker.semantic import SemanticCheck
from grounded.checker.stream import check, inline_sources, sources_for
from grounded.checker.support import SupportCheck
from grounded.options import CheckOptions, CheckSettings

__all__ = [
    "BLOCKING",
    "CALIBRATION",
    "DEFAULT_THRESHOLD",
    "DEFAULT_THRESHOLDS",
    "ENTRY_POINT_GROUP",
    "FEATURES",
    "QA_FEATURES",
    "SIGNS",
    "AnswerTypeCheck",
    "Calibration",
    "Check",
    "CheckOptions",
    "CheckResult",
    "CheckSettings",
    "CheckSpec",
    "Checker",
    "Context",
    "InstructionCheck",
    "JudgeCheck",
    "ModelCheck",
    "PipelineChecker",
    "QAFitCheck",
    "QuestionCheck",
    "QuoteCheck",
    "SemanticCheck",
    "SupportCheck",
    "blocking_codes",
    "check",
    "checks",
    "default_checker",
    "inline_sources",
    "load_calibration",
    "register_check",
    "says_not_in_sources",
    "sources_for",
    "unregister_check",
]
