"""The built-in checks, registered through `register_check` as a third party's are.

They run in this order: the lexical checks on every pair (quotes, support, question, fit,
instructions), then the model-backed ones on the pairs their policy picks (MiniLM first, then the
cheap span reader: a pair it rejects needs no spaCy parse; then spaCy's answer types, the learned
verifier, an LLM's reading), then the judge near the threshold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grounded.checker.answer_type import AnswerTypeCheck
from grounded.checker.calibration import FEATURES, QA_FEATURES
from grounded.checker.fit import QAFitCheck
from grounded.checker.instructions import InstructionCheck
from grounded.checker.judge import JudgeCheck, default_judge_cache
from grounded.checker.llm_read import LLMReadCheck
from grounded.checker.question import QuestionCheck
from grounded.checker.quotes import QuoteCheck
from grounded.checker.reader import READER, ReaderCheck
from grounded.checker.registry import CheckSpec, register_check
from grounded.checker.semantic import SemanticCheck
from grounded.checker.support import SupportCheck
from grounded.checker.verifier import VerifierCheck
from grounded.errors import CheckError
from grounded.options import CheckOptions

CONTRADICTIONS = (
    "number_mismatch",
    "date_mismatch",
    "unit_mismatch",
    "entity_mismatch",
    "negation_mismatch",
)


def _semantic_policy(options: CheckOptions) -> str:
    if options.semantic not in ("borderline", "all", "off"):
        raise CheckError(f"semantic mode must be borderline, all or off, not {options.semantic!r}")
    return options.semantic


def _qa_fit(options: CheckOptions) -> bool:
    """The question-answer fit checks run: mode "qa" with fit_checks."""
    return options.fit_checks and not options.answer_only


def _verifier(options: CheckOptions) -> VerifierCheck | None:
    from grounded.checker.verifier import Verifier

    return VerifierCheck() if not options.answer_only and Verifier.available() else None


def _reading(options: CheckOptions) -> LLMReadCheck | None:
    llm = llm_for(options.read, options.judge_cache)
    return LLMReadCheck(llm) if llm is not None and not options.answer_only else None


def _judge(options: CheckOptions) -> JudgeCheck | None:
    llm = llm_for(options.judge, options.judge_cache)
    return JudgeCheck(llm) if llm is not None else None


def llm_for(model: str | Any | None, cache: str | Path | None) -> Any:
    """A model string as a cached `grounded.llm.LLM`; an object with `complete` as it is."""
    if model is None or not isinstance(model, str):
        return model
    from grounded.llm import LLM, LOCAL_TIMEOUT_S, Retries, is_local

    return LLM(
        model,
        cache=cache if cache is not None else default_judge_cache(),
        retries=Retries(timeout=LOCAL_TIMEOUT_S if is_local(model) else 60.0),
    )


BUILTIN_CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec(
        "quotes",
        lambda o: QuoteCheck(min_score=o.min_quote_score),
        blocking={"quote_not_found", "offset_mismatch", "no_sources"},
        signals=("quote_score",),
    ),
    CheckSpec(
        "support",
        lambda o: SupportCheck(),
        blocking={
            "empty_answer",
            "no_sources",
            *CONTRADICTIONS,
            "not_a_refusal",
            "answerable_in_sources",
        },
        signals=(*FEATURES, "question_coverage"),
    ),
    CheckSpec(
        "question",
        lambda o: QuestionCheck() if o.question_checks and not o.answer_only else None,
        blocking={
            "not_a_question",
            "question_has_extra_text",
            "question_needs_context",
            "answer_names_nothing",
            "answer_in_question",
            "question_not_about_evidence",
        },
        signals=("question_about",),
    ),
    CheckSpec(
        "fit",
        lambda o: QAFitCheck() if _qa_fit(o) else None,
        blocking={"answer_type_mismatch", "vague_question", "answer_not_near_question_terms"},
        signals=QA_FEATURES[len(FEATURES) : QA_FEATURES.index("type_agree")],
    ),
    CheckSpec(
        "instructions",
        lambda o: InstructionCheck(),
        blocking={"answer_echoes_instruction"},
        signals=("instruction_in_evidence",),
    ),
    CheckSpec(
        "semantic",
        lambda o: SemanticCheck(o.embedder),
        signals=("sem",),
        kind="model",
        policy=_semantic_policy,
    ),
    CheckSpec(
        "reader",
        lambda o: ReaderCheck() if _qa_fit(o) and READER is not None else None,
        signals=("rd_score", "rd_margin"),
        kind="model",
        policy=lambda o: o.reader,
    ),
    CheckSpec(
        "answer_type",
        lambda o: AnswerTypeCheck() if _qa_fit(o) else None,
        blocking={"answer_type_mismatch"},
        signals=("type_agree", "type_conflict", "focus_near"),
        kind="model",
        policy=lambda o: o.answer_types,
    ),
    CheckSpec("verifier", _verifier, signals=("ver",), kind="model", policy=lambda o: o.verifier),
    CheckSpec(
        "llm_read",
        _reading,
        signals=("llm_yes", "llm_agree"),
        kind="model",
        policy=lambda o: o.read_mode,
    ),
    CheckSpec("judge", _judge, blocking={"judge_unsupported"}, signals=("judge",), kind="judge"),
)

for _spec in BUILTIN_CHECKS:
    register_check(_spec)
