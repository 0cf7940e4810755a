"""A run's settings as typed objects, built once (by the CLI, or by `grounded.run`/`generate`).

    RunOptions      the run folder, what to report against, and the sections below
    IngestOptions   chunking, embedder, Chroma server
    ModelOptions    which model, and how its calls are made (connection, limits, sampling)
    GenerateOptions how many pairs, with which prompt, planned how, read back how
    CheckOptions    the checker: threshold, which checks run and how, an LLM judge
    ExecutorOptions where fan-out work runs: this process, `workers` processes, or Ray

The public functions keep their keyword style (`grounded.run(paths, out=..., n=10)`): the flat
keywords, typed by the `*Settings` dicts, are sorted into these objects by `from_settings`, where an
unknown keyword is a TypeError as it would be for any function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, Unpack

from grounded.chunking import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_TOKENS
from grounded.embed import DEFAULT_EMBEDDER

if TYPE_CHECKING:
    from grounded.prompting import Prompt

Notify = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class IngestOptions:
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS
    embedder: str = DEFAULT_EMBEDDER
    chroma_url: str | None = None


@dataclass(frozen=True, slots=True)
class ModelOptions:
    """The model (default: the local one) and how its calls are made.

    timeout: seconds per call (default 60, or 600 for in-process models); response_format:
    json_schema | json_object | none | auto (json_object with a schema when `api_base` points at a
    self-hosted server, else json_schema); temperature: default 0.2 locally, else 0.7.
    """

    model: str | None = None
    api_base: str | None = None
    api_key: str | None = None
    timeout: float | None = None
    max_retries: int = 4
    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    response_format: str = "auto"


@dataclass(frozen=True, slots=True)
class GenerateOptions:
    """What to generate (see `grounded.generate` for each field)."""

    n: int = 20
    prompt: str | Path | Prompt = "factoid"
    pairs_per_call: int = 3
    language: str = "en"
    seed: int = 0
    max_calls: int | None = None
    max_rounds: int | None = None
    retry_invalid: bool = True
    quote_choices: bool | None = None
    verify: str | None = None
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """How the default checker is built: the threshold and which checks run, with what policy.

    The fields are `default_checker`'s keywords (see its docstring); `policies` sets a registered
    check's policy by name ("off" leaves it out), for checks without a field of their own.
    """

    threshold: float | None = None
    semantic: str = "borderline"
    judge: str | Any | None = None
    judge_mode: str = "borderline"
    judge_band: float = 0.25
    judge_cache: str | Path | None = None
    embedder: Any = None
    answer_only: bool = False
    question_checks: bool = True
    fit_checks: bool = True
    answer_types: str = "keepable"
    reader: str = "keepable"
    verifier: str = "keepable"
    read: str | Any | None = None
    read_mode: str = "keepable"
    min_quote_score: float = 0.9
    policies: Mapping[str, str] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        """ "claim" for a standalone statement (answer_only), else "qa"."""
        return "claim" if self.answer_only else "qa"

    def policy(self, name: str, default: str = "all") -> str:
        """The policy the options give the check `name` (its own field's, else `default`)."""
        return self.policies.get(name, default)


class CheckSettings(TypedDict, total=False):
    """`CheckOptions`' fields as keywords (`default_checker(threshold=0.5, semantic="off")`)."""

    threshold: float | None
    semantic: str
    judge: str | Any | None
    judge_mode: str
    judge_band: float
    judge_cache: str | Path | None
    embedder: Any
    answer_only: bool
    question_checks: bool
    fit_checks: bool
    answer_types: str
    reader: str
    verifier: str
    read: str | Any | None
    read_mode: str
    min_quote_score: float
    policies: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ExecutorOptions:
    """executor: "local" (`workers` processes parse files) or "ray" (`workers` CPUs locally, or
    the cluster at `ray_address`)."""

    executor: str = "local"
    workers: int = 1
    ray_address: str | None = None


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything `grounded run` needs besides the input paths."""

    out: str | Path
    index: str | Path | None = None
    reference: str | Path | None = None
    progress: bool = False
    notify: Notify | None = None
    no_check: bool = False  # keep pairs unchecked (the verdict says so)
    ingest: IngestOptions = field(default_factory=IngestOptions)
    model: ModelOptions = field(default_factory=ModelOptions)
    generate: GenerateOptions = field(default_factory=GenerateOptions)
    check: CheckOptions = field(default_factory=CheckOptions)
    executor: ExecutorOptions = field(default_factory=ExecutorOptions)

    @classmethod
    def from_settings(cls, *, out: str | Path, **settings: Unpack[RunSettings]) -> RunOptions:
        """The options from `grounded.run`'s flat keywords (RunSettings)."""
        rest: dict[str, Any] = dict(settings)
        names = ("index", "reference", "progress", "notify", "no_check")
        top = {k: rest.pop(k) for k in names if k in rest}
        options = cls(
            out=out,
            ingest=take(IngestOptions, rest),
            model=take(ModelOptions, rest),
            generate=take(GenerateOptions, rest),
            check=take(CheckOptions, rest),
            executor=take(ExecutorOptions, rest),
        )
        unexpected(rest, "run")
        return replace(options, **top)


def take(kind: type[T], settings: dict[str, Any]) -> T:
    """`kind` from the keys of `settings` that are its fields (removed from `settings`)."""
    names = {f.name for f in fields(kind)}  # type: ignore[arg-type]
    return kind(**{k: settings.pop(k) for k in list(settings) if k in names})


def merged(kind: type[T], base: T | None, settings: dict[str, Any]) -> T:
    """`base` (or `kind`'s defaults) with the keys of `settings` that are its fields."""
    if base is None:
        return take(kind, settings)
    names = {f.name for f in fields(kind)}  # type: ignore[arg-type]
    return replace(base, **{k: settings.pop(k) for k in list(settings) if k in names})  # type: ignore[type-var]


def unexpected(rest: Mapping[str, Any], function: str) -> None:
    if rest:
        raise TypeError(f"{function}() got an unexpected keyword argument {next(iter(rest))!r}")


class ModelSettings(TypedDict, total=False):
    model: str | None
    api_base: str | None
    api_key: str | None
    timeout: float | None
    max_retries: int
    concurrency: int
    rpm: float | None
    tpm: float | None
    temperature: float | None
    max_tokens: int | None
    response_format: str


class GenerateSettings(ModelSettings, total=False):
    """`grounded.generate`'s keywords: GenerateOptions' and ModelOptions' fields."""

    n: int
    prompt: str | Path | Prompt
    pairs_per_call: int
    language: str
    seed: int
    max_calls: int | None
    max_rounds: int | None
    retry_invalid: bool
    quote_choices: bool | None
    verify: str | None
    dry_run: bool


class RunSettings(GenerateSettings, total=False):
    """`grounded.run`'s keywords: every section's fields, flat."""

    index: str | Path | None
    reference: str | Path | None
    progress: bool
    notify: Notify | None
    chunk_tokens: int
    overlap_tokens: int
    embedder: str
    chroma_url: str | None
    threshold: float | None
    judge: str | None
    semantic: str
    answer_types: str
    no_check: bool
    executor: str
    workers: int
    ray_address: str | None
