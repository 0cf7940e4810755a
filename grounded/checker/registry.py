"""The checks the default checker runs, registered by name, and the options that build them.

A check registers a `CheckSpec`: how to build it from the run's `CheckOptions` (None: not in this
configuration), the signals it writes and the reason codes that reject a pair whatever its score.
The built-in checks register in grounded.checker.builtin through `register_check`, the same call a
third party uses; a package can also expose a module (which registers on import) or a `CheckSpec`
under the `grounded.checks` entry-point group, loaded on first use of the registry.

    from grounded.checker import CheckResult, CheckSpec, register_check
    from grounded.types import Reason

    class NoDraft:
        name = "no_draft"

        def run(self, ctx):
            draft = "DRAFT" in ctx.pair.answer
            return CheckResult([Reason("draft_answer", "a draft")] if draft else [])

    register_check(CheckSpec("no_draft", lambda options: NoDraft(), blocking={"draft_answer"}))

A check that only blocks needs nothing else. A check whose signals should move the score also
needs the calibration refitted with them (benchmarks/fit_checker.py --write): until then the
fitted models ignore its signals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from grounded.errors import CheckError
from grounded.options import CheckOptions
from grounded.plugins import Registry

# Modules that register the built-in checks, imported lazily (llm's DEFAULT_PLUGINS pattern).
DEFAULT_CHECK_MODULES = ("grounded.checker.builtin",)
ENTRY_POINT_GROUP = "grounded.checks"
# lexical: runs on every pair (`run(ctx)`); model: a ModelCheck, batched and picked by its policy;
# judge: the LLM judge (one at most), called on pairs near the threshold or on all.
Kind = Literal["lexical", "model", "judge"]
POLICIES = ("off", "all", "borderline", "keepable")


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """A registered check.

    build: the check for these options, or None when it does not run in them.
    blocking: reason codes of this check that reject a pair whatever its score.
    signals: the signals it writes (a scoring signal needs the calibration refitted with it).
    kind: "lexical" (`run(ctx) -> CheckResult` on every pair), "model" (a ModelCheck), "judge".
    policy: which pairs it reads under these options ("all", "borderline", "keepable": model
    checks; "off" leaves any check out); default: options.policies[name], else "all".
    """

    name: str
    build: Callable[[CheckOptions], Any]
    blocking: frozenset[str] | set[str] | tuple[str, ...] = frozenset()
    signals: tuple[str, ...] = ()
    kind: Kind = "lexical"
    policy: Callable[[CheckOptions], str] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("lexical", "model", "judge"):
            raise CheckError(f"check {self.name!r}: kind must be lexical, model or judge")
        object.__setattr__(self, "blocking", frozenset(self.blocking))
        object.__setattr__(self, "signals", tuple(self.signals))

    def policy_for(self, options: CheckOptions) -> str:
        """This check's policy under `options` ("off": it does not run)."""
        found = self.policy(options) if self.policy is not None else options.policy(self.name)
        if found not in POLICIES:
            raise CheckError(
                f"{self.name}: policy must be one of {', '.join(POLICIES)}, not {found!r}"
            )
        return found


def register_check(spec: CheckSpec, *, replace: bool = True) -> CheckSpec:
    """Register a check by its name (a registered name is replaced unless replace=False)."""
    if not isinstance(spec, CheckSpec):
        raise CheckError(f"register_check takes a CheckSpec, not {type(spec).__name__}")
    return CHECKS.register(spec.name, spec, replace=replace)


def unregister_check(name: str) -> None:
    """Remove a registered check (no error if there is none)."""
    CHECKS.unregister(name)


def _adopt(found: object) -> None:
    """An entry point may name a CheckSpec or a list of them (or a module that registers)."""
    for spec in found if isinstance(found, (list, tuple)) else [found]:
        if isinstance(spec, CheckSpec):
            register_check(spec)


CHECKS: Registry[CheckSpec] = Registry(
    "check", ENTRY_POINT_GROUP, defaults=DEFAULT_CHECK_MODULES, adopt=_adopt
)


def checks() -> dict[str, CheckSpec]:
    """A copy of the registry, in registration order (the order the checks run in): name -> spec."""
    return CHECKS.items()


def blocking_codes(specs: Iterable[CheckSpec] | None = None) -> frozenset[str]:
    """The reason codes that reject a pair whatever its score, over the registered checks."""
    found = checks().values() if specs is None else specs
    return frozenset().union(*(spec.blocking for spec in found))


def declared_signals() -> Mapping[str, str]:
    """Signal -> the registered check that declares it."""
    return {s: spec.name for spec in checks().values() for s in spec.signals}
