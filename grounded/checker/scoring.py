"""The pipeline: runs the checks on each pair and turns their signals into a calibrated verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from grounded.checker.answer_type import AnswerTypeCheck
from grounded.checker.calibration import (
    CALIBRATION,
    DEFAULT_THRESHOLDS,
    FIT_NEUTRAL,
    calibration_for,
)
from grounded.checker.context import CheckResult, Context, ModelCheck, says_not_in_sources, short
from grounded.checker.fit import QAFitCheck
from grounded.checker.instructions import InstructionCheck
from grounded.checker.judge import JudgeCheck, default_judge_cache
from grounded.checker.llm_read import LLMReadCheck
from grounded.checker.question import QuestionCheck
from grounded.checker.quotes import QuoteCheck
from grounded.checker.reader import READER, ReaderCheck
from grounded.checker.semantic import SemanticCheck
from grounded.checker.support import SupportCheck
from grounded.checker.verifier import VerifierCheck
from grounded.errors import CheckError
from grounded.types import Chunk, QAPair, Reason, Verdict

# What a non-English pair skips (English word lists); reported as `checks_skipped_language`.
SKIPPED_LANGUAGE: dict[str, str] = {
    "qa": "not English: skipped the question-word, question-answer fit, negation and name checks (English word lists)",
    "claim": "not English: skipped the negation and name checks (English word lists)",
}
# How a model-backed check picks its pairs: every pair, those near the threshold, or those the
# cheap checks have not already rejected (its signals at their best case still reach the threshold).
MODEL_POLICIES: tuple[str, ...] = ("all", "borderline", "keepable")
# Reasons that reject a pair whatever its score.
BLOCKING: frozenset[str] = frozenset(
    {
        "empty_answer",
        "no_sources",
        "quote_not_found",
        "offset_mismatch",
        "number_mismatch",
        "date_mismatch",
        "unit_mismatch",
        "entity_mismatch",
        "negation_mismatch",
        "answer_echoes_instruction",
        "not_a_question",
        "question_has_extra_text",
        "question_needs_context",
        "answer_names_nothing",
        "answer_in_question",
        "question_not_about_evidence",
        "answer_type_mismatch",
        "vague_question",
        "answer_not_near_question_terms",
        "not_a_refusal",
        "answerable_in_sources",
        "judge_unsupported",
    }
)


class PipelineChecker:
    """Runs the checks on each pair and turns their signals into a calibrated verdict.

    Mode "qa" reads the answer with its question; mode "claim" (answer_only=True) checks a
    standalone statement. Each has its own calibration and default threshold.
    semantic: "borderline" (default; MiniLM only when the lexical score is within
    SEMANTIC_BAND of the threshold), "all", or "off". models: further model-backed checks
    (ModelCheck) with their policy ("borderline" or "all"), run after MiniLM, each batched over
    the pairs it selects. judge_mode: "borderline" (judge pairs
    whose score is within `judge_band` of the threshold) or "all"; ignored without a judge.
    Refusals (kind "unanswerable", or an answer saying the documents do not tell) are not
    scored by the calibration: they pass unless the sources answer the question
    (`answerable_in_sources`); their score is 1 - the question's best window coverage.
    """

    def __init__(
        self,
        *,
        threshold: float | None = None,
        quotes: QuoteCheck | None = None,
        support: SupportCheck | None = None,
        semantic: SemanticCheck | None = None,
        semantic_mode: str = "borderline",
        question: QuestionCheck | None = None,
        fit: QAFitCheck | None = None,
        judge: JudgeCheck | None = None,
        judge_mode: str = "borderline",
        judge_band: float = 0.25,
        blocking: frozenset[str] = BLOCKING,
        answer_only: bool = False,
        instructions: InstructionCheck | None = None,
        models: Sequence[tuple[ModelCheck, str]] = (),
    ) -> None:
        if semantic_mode not in ("borderline", "all", "off"):
            raise CheckError(f"semantic mode must be borderline, all or off, not {semantic_mode!r}")
        for model, policy in models:
            if policy not in MODEL_POLICIES:
                raise CheckError(
                    f"{model.name}: policy must be one of {', '.join(MODEL_POLICIES)}, not {policy!r}"
                )
        if judge_mode not in ("borderline", "all"):
            raise CheckError(f"judge mode must be borderline or all, not {judge_mode!r}")
        self.mode = "claim" if answer_only else "qa"
        threshold = DEFAULT_THRESHOLDS[self.mode] if threshold is None else float(threshold)
        if not 0.0 <= threshold <= 1.0:
            raise CheckError(f"threshold must be in [0, 1], not {threshold}")
        self.threshold = threshold
        self.quotes = quotes
        self.support = support or SupportCheck()
        self.semantic = semantic if semantic_mode != "off" else None
        self.semantic_mode = semantic_mode
        self.question = question
        self.fit = fit if not answer_only else None
        self.judge = judge
        self.judge_mode = judge_mode
        self.judge_band = judge_band
        self.blocking = blocking
        self.answer_only = answer_only
        self.instructions = instructions
        # the model-backed checks in the order they run, each with its policy
        self.models: list[tuple[ModelCheck, str]] = [
            *([(self.semantic, semantic_mode)] if self.semantic is not None else []),
            *models,
        ]

    def check(self, pair: QAPair, sources: Sequence[Chunk]) -> Verdict:
        return self.check_many([(pair, sources)])[0]

    async def acheck(self, pair: QAPair, sources: Sequence[Chunk]) -> Verdict:
        """`check` for an event loop: the judge's call (when it runs) is awaited, never blocked on."""
        ctx, partial = self.score_batch([(pair, sources)])[0]
        judged = await self.judge.arun(ctx) if self.wants_judge(partial[2]) and self.judge else None
        return self.finish(ctx, *partial, judged=judged)

    def check_many(self, items: Sequence[tuple[QAPair, Sequence[Chunk]]]) -> list[Verdict]:
        """Check a batch: the lexical parts per pair, each model-backed check's calls batched."""
        return [self.finish(ctx, *part) for ctx, part in self.score_batch(items)]

    def score_batch(
        self, items: Sequence[tuple[QAPair, Sequence[Chunk]]]
    ) -> list[tuple[Context, tuple[list[Reason], dict[str, float], float]]]:
        """Each pair's context with its reasons, signals and score before the judge."""
        ctxs = [Context(p, s, answer_only=self.answer_only) for p, s in items]
        partial = [self.lexical(c) for c in ctxs]
        for model, policy in self.models:
            need = [
                i
                for i, (reasons, _, score) in enumerate(partial)
                if self._wants_model(model, policy, ctxs[i], reasons, score)
            ]
            if not need:
                continue
            model.prefetch([ctxs[i] for i in need])
            for i in need:
                reasons, signals, _ = partial[i]
                out = model.run(ctxs[i])
                reasons.extend(out.reasons)
                signals.update(out.signals)
                if model.signal in signals:
                    partial[i] = (
                        reasons,
                        signals,
                        calibration_for(self.mode, signals).score(signals),
                    )
        return list(zip(ctxs, partial, strict=True))

    def _wants_model(
        self, model: ModelCheck, policy: str, ctx: Context, reasons: Sequence[Reason], score: float
    ) -> bool:
        if ctx.is_refusal and not ctx.answer_only:
            return False
        if policy == "all":
            return True
        if self.mode not in model.modes:
            return False
        if policy == "keepable":
            # its signals start at their best case (`neutral`): a blocked pair, or one whose score
            # is below the threshold even so, is rejected whatever the check would find
            return score >= self.threshold - model.band and not any(
                r.code in self.blocking for r in reasons
            )
        # borderline: only near the threshold, and only where the fit gave the signal a real weight
        cal = CALIBRATION.get(f"{self.mode}+{model.signal}")
        if cal is None or abs(cal.weights[cal.features.index(model.signal)]) < model.min_weight:
            return False
        return abs(score - self.threshold) <= model.band

    def lexical(self, ctx: Context) -> tuple[list[Reason], dict[str, float], float]:
        """A pair's reasons, signals and score from the cheap checks (no model, no judge)."""
        reasons: list[Reason] = []
        signals: dict[str, float] = {}
        for chk in (self.quotes, self.support, self.question, self.fit, self.instructions):
            if chk is None:
                continue
            out = chk.run(ctx)
            reasons.extend(out.reasons)
            signals.update(out.signals)
        if not ctx.english:
            reasons.append(Reason("checks_skipped_language", SKIPPED_LANGUAGE[self.mode]))
        if ctx.is_refusal and not ctx.answer_only:
            answered = self._answered_by_model(ctx)
            if answered is not None and not any(r.code == "answerable_in_sources" for r in reasons):
                reasons.append(answered)
            return reasons, signals, 1.0 - signals.get("question_coverage", 0.0)
        # a model check's best case first (it may still run), then the fit checks' neutral values
        for model, _ in self.models:
            if self.mode in model.modes:
                for k, v in model.neutral.items():
                    signals.setdefault(k, v)
        if self.mode == "qa":
            for k, v in FIT_NEUTRAL.items():
                signals.setdefault(k, v)
        return reasons, signals, CALIBRATION[self.mode].score(signals)

    def _answered_by_model(self, ctx: Context) -> Reason | None:
        """For an unanswerable pair, `answerable_in_sources` when the model's own non-refusal answer
        (the pair's answer, or metadata "model_answer") passes the checks as a factoid pair."""
        proposed = ctx.pair.answer
        if says_not_in_sources(proposed):
            proposed = str(ctx.pair.metadata.get("model_answer") or "")
        if not proposed.strip() or says_not_in_sources(proposed):
            return None
        sub = Context(replace(ctx.pair, answer=proposed, kind="factoid"), ctx.sources)
        reasons, _, score = self.lexical(sub)
        if score < self.threshold or any(r.code in self.blocking for r in reasons):
            return None
        return Reason(
            "answerable_in_sources",
            f"the sources support the model's own answer {short(proposed, 40)!r}",
        )

    def wants_judge(self, score: float) -> bool:
        """Whether the judge reads a pair with this score (there is one, and the pair is in its band)."""
        return self.judge is not None and (
            self.judge_mode == "all" or abs(score - self.threshold) <= self.judge_band
        )

    def finish(
        self,
        ctx: Context,
        reasons: list[Reason],
        signals: dict[str, float],
        score: float,
        *,
        judged: CheckResult | None = None,
    ) -> Verdict:
        """The verdict from `score_batch`'s partial result (the judge's, when given, or it is called)."""
        if judged is None and self.judge is not None and self.wants_judge(score):
            judged = self.judge.run(ctx)
        if judged is not None:
            out = judged
            reasons.extend(out.reasons)
            signals.update(out.signals)
            if "judge" in out.signals:
                # the judge's share of supported claims replaces the score when it answered
                score = 0.5 * score + 0.5 * out.signals["judge"]
        signals["score"] = score
        blocked = [r for r in reasons if r.code in self.blocking]
        refusal = ctx.is_refusal and not ctx.answer_only
        supported = (refusal or score >= self.threshold) and not blocked
        if score < self.threshold and not refusal:
            reasons.append(
                Reason(
                    "low_support", f"support score {score:.2f} below threshold {self.threshold:.2f}"
                )
            )
        return Verdict(
            supported=supported,
            score=round(score, 4),
            reasons=tuple(reasons),
            signals={k: round(float(v), 4) for k, v in signals.items()},
        )

    # The names grounded.stages used before these were public; removed once it calls the new ones.
    _scored = score_batch
    _wants_judge = wants_judge
    _finish = finish
    _lexical = lexical


def default_checker(
    *,
    threshold: float | None = None,
    semantic: str = "borderline",
    judge: str | Any | None = None,
    judge_mode: str = "borderline",
    judge_cache: str | Path | None = None,
    embedder: Any = None,
    answer_only: bool = False,
    question_checks: bool = True,
    fit_checks: bool = True,
    answer_types: str = "keepable",
    reader: str = "keepable",
    verifier: str = "keepable",
    read: str | Any | None = None,
    read_mode: str = "keepable",
    min_quote_score: float = 0.9,
) -> PipelineChecker:
    """The full pipeline with the documented defaults; every default can be overridden.

    judge: a litellm model string or an object with `complete(messages, **kw)` (e.g. grounded.llm.LLM);
    a model string gets an LLM whose calls are cached in `judge_cache` (default_judge_cache()).
    answer_only: the answer is a standalone claim (no question to read it with), as in WiCE.
    question_checks: False skips the question checks (not_a_question, answer_in_question,
    question_not_about_evidence; benchmarks whose questions are not ours).
    fit_checks: False skips the question-answer fit checks (QAFitCheck: answer type, vague
    question, question terms around the answer); they never run on claims (answer_only).
    answer_types: how the spaCy answer-type check (AnswerTypeCheck) picks pairs: "keepable"
    (default: those the cheap checks have not rejected), "all", or "off"; with the fit checks only.
    reader: the same policies for the span reader (ReaderCheck: signals rd_score, rd_margin),
    with the fit checks only.
    verifier: the same policies for the learned verifier (VerifierCheck, signal `ver`), in qa mode,
    when its weights ship (grounded.verifier.Verifier.available()).
    read: an LLM that reads each pair (LLMReadCheck: its own answer to the question and a Yes/No
    from token probabilities; signals llm_yes, llm_agree), a litellm model string or an object
    with `complete(messages, **kw)`; its calls are cached in `judge_cache`. read_mode: the
    policies above ("keepable" by default), in qa mode.
    """
    llm = _llm(judge, judge_cache)
    read_llm = _llm(read, judge_cache)
    return PipelineChecker(
        threshold=threshold,
        quotes=QuoteCheck(min_score=min_quote_score),
        support=SupportCheck(),
        semantic=SemanticCheck(embedder),
        semantic_mode=semantic,
        question=QuestionCheck() if question_checks and not answer_only else None,
        fit=QAFitCheck() if fit_checks and not answer_only else None,
        judge=JudgeCheck(llm) if llm is not None else None,
        judge_mode=judge_mode,
        answer_only=answer_only,
        instructions=InstructionCheck(),
        models=_model_checks(
            answer_only=answer_only,
            fit_checks=fit_checks,
            answer_types=answer_types,
            reader=reader,
            verifier=verifier,
        )
        + (
            [(LLMReadCheck(read_llm), read_mode)]
            if read_llm is not None and not answer_only
            else []
        ),
    )


def _llm(model: str | Any | None, cache: str | Path | None) -> Any:
    """A model string as a cached `grounded.llm.LLM`; an object with `complete` as it is."""
    if model is None or not isinstance(model, str):
        return model
    from grounded.llm import LLM, LOCAL_TIMEOUT_S, is_local

    return LLM(
        model,
        cache=cache if cache is not None else default_judge_cache(),
        timeout=LOCAL_TIMEOUT_S if is_local(model) else 60.0,
    )


def _model_checks(
    *, answer_only: bool, fit_checks: bool, answer_types: str, reader: str, verifier: str
) -> list[tuple[Any, str]]:
    """The model-backed checks after MiniLM, each with its policy, in the order they run (the
    cheap reader first: a pair it rejects needs no spaCy parse)."""
    if answer_only:
        return []
    models: list[tuple[Any, str]] = []
    if fit_checks and reader != "off" and READER is not None:
        models.append((ReaderCheck(), reader))
    if fit_checks and answer_types != "off":
        models.append((AnswerTypeCheck(), answer_types))
    if verifier != "off":
        from grounded.verifier import Verifier

        if Verifier.available():
            models.append((VerifierCheck(), verifier))
    return models
