"""Mix real (human) and synthetic QA pairs at a chosen ratio, deterministically.

`ratio` is the share of real rows in the output: 0.25 means one real row in four. Without `n`
the output is the largest set that keeps the ratio exactly with the rows at hand (the side that
runs out first is the limit; rows of the other side are left over). With `n`, the output aims
at `n` rows (`round(ratio * n)` real); a side that has fewer rows than asked for is used whole
and reported as short, so the output is smaller and its real share differs from `ratio`.
Sampling and the final order come from `random.Random(seed)`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from grounded.errors import ConfigError
from grounded.types import QAPair


@dataclass(frozen=True, slots=True)
class MixReport:
    """How many rows of each side were available, asked for and used."""

    ratio: float
    real_available: int
    synthetic_available: int
    real_wanted: int
    synthetic_wanted: int
    real_used: int
    synthetic_used: int
    short: tuple[str, ...] = ()  # sides that had fewer rows than asked for

    @property
    def total(self) -> int:
        return self.real_used + self.synthetic_used

    @property
    def real_share(self) -> float:
        return self.real_used / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ratio": self.ratio,
            "total": self.total,
            "real_share": round(self.real_share, 4),
            "real": {
                "available": self.real_available,
                "wanted": self.real_wanted,
                "used": self.real_used,
            },
            "synthetic": {
                "available": self.synthetic_available,
                "wanted": self.synthetic_wanted,
                "used": self.synthetic_used,
            },
            "short": list(self.short),
        }


def check_ratio(ratio: float) -> float:
    if math.isnan(ratio) or not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"ratio must be between 0 and 1 (the share of real rows), got {ratio}")
    return ratio


def plan(
    ratio: float, real_available: int, synthetic_available: int, n: int | None = None
) -> tuple[int, int]:
    """Rows wanted from each side (before any shortfall)."""
    check_ratio(ratio)
    if n is not None:
        if n < 0:
            raise ConfigError(f"n must be positive, got {n}")
        real = round(ratio * n)
        return real, n - real
    if ratio == 0.0:
        return 0, synthetic_available
    if ratio == 1.0:
        return real_available, 0
    # Largest total whose real and synthetic parts both fit.
    total = min(
        math.floor(real_available / ratio + 1e-9),
        math.floor(synthetic_available / (1 - ratio) + 1e-9),
    )
    while total > 0:
        real = round(ratio * total)
        if real <= real_available and total - real <= synthetic_available:
            return real, total - real
        total -= 1
    return 0, 0


def mix(
    real: Sequence[QAPair],
    synthetic: Sequence[QAPair],
    *,
    ratio: float,
    n: int | None = None,
    seed: int = 0,
    real_source: str = "",
    synthetic_source: str = "",
) -> tuple[list[QAPair], MixReport]:
    """Sample and shuffle real and synthetic pairs so `ratio` of the rows are real; every row says its origin."""
    real_wanted, syn_wanted = plan(ratio, len(real), len(synthetic), n)
    rng = random.Random(seed)
    real_used = min(real_wanted, len(real))
    syn_used = min(syn_wanted, len(synthetic))
    short = tuple(
        side
        for side, used, wanted in (
            ("real", real_used, real_wanted),
            ("synthetic", syn_used, syn_wanted),
        )
        if used < wanted
    )
    rows = [_tag(p, "real", real_source) for p in rng.sample(list(real), real_used)]
    rows += [_tag(p, "synthetic", synthetic_source) for p in rng.sample(list(synthetic), syn_used)]
    rng.shuffle(rows)
    report = MixReport(
        ratio, len(real), len(synthetic), real_wanted, syn_wanted, real_used, syn_used, short
    )
    return rows, report


def _tag(pair: QAPair, origin: str, source: str) -> QAPair:
    metadata = dict(pair.metadata)
    if source:
        metadata.setdefault("mixed_from", source)
    return replace(pair, origin=origin, metadata=metadata)


def read_side(path: str | Path, *, format: str | None = None) -> list[QAPair]:
    """Pairs from SQuAD JSON or QA JSONL."""
    from grounded.qaset import read_qa_set

    return list(read_qa_set(path, format=format).pairs)
