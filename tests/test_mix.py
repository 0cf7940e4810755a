"""Mixing real and synthetic pairs: the ratio, origins, provenance, determinism, shortfalls."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from grounded.commands.dataset import mix as mix_command
from grounded.errors import EXIT_PARTIAL, ConfigError
from grounded.mix import mix, plan
from grounded.types import Provenance, QAPair

DATA = Path(__file__).parent / "data" / "health"


def side(prefix: str, k: int, origin: str) -> list[QAPair]:
    prov = Provenance(model="m-x", prompt="factoid") if origin == "synthetic" else Provenance()
    return [
        QAPair(
            id=f"{prefix}{i}",
            question=f"{prefix} question {i}?",
            answer=str(i),
            origin=origin,
            provenance=prov,
        )
        for i in range(k)
    ]


@pytest.mark.parametrize(
    ("ratio", "real", "syn", "n", "expected"),
    [
        (0.25, 100, 30, None, (10, 30)),  # synthetic is the limit: 30 synthetic -> 40 rows
        (0.5, 7, 100, None, (7, 7)),
        (0.0, 10, 20, None, (0, 20)),
        (1.0, 10, 20, None, (10, 0)),
        (0.3, 100, 100, 10, (3, 7)),
        (0.5, 2, 100, 10, (5, 5)),  # wanted, before the shortfall
    ],
)
def test_plan(ratio, real, syn, n, expected):
    assert plan(ratio, real, syn, n) == expected


@pytest.mark.parametrize("ratio", [-0.1, 1.5, float("nan")])
def test_ratio_out_of_range(ratio):
    with pytest.raises(ConfigError, match="between 0 and 1"):
        plan(ratio, 1, 1)


def test_mix_ratio_origins_and_provenance():
    real, syn = (
        side("r", 50, "synthetic"),
        side("s", 90, "synthetic"),
    )  # real rows arrive mislabelled
    rows, rep = mix(real, syn, ratio=0.4, seed=3, real_source="squad.json")
    origins = Counter(p.origin for p in rows)
    assert (
        origins == {"real": 50, "synthetic": 75}
        and rep.total == 125
        and rep.real_share == pytest.approx(0.4)
    )
    assert all(p.id.startswith("r") for p in rows if p.origin == "real")
    assert all(p.provenance.model == "m-x" for p in rows)  # provenance kept as it was
    assert all(p.metadata["mixed_from"] == "squad.json" for p in rows if p.origin == "real")
    assert not rep.short and len({p.id for p in rows}) == len(rows)


def test_mix_is_deterministic_and_shuffled():
    real, syn = side("r", 20, "real"), side("s", 20, "synthetic")
    a, _ = mix(real, syn, ratio=0.5, seed=1)
    b, _ = mix(real, syn, ratio=0.5, seed=1)
    c, _ = mix(real, syn, ratio=0.5, seed=2)
    assert [p.id for p in a] == [p.id for p in b] != [p.id for p in c]
    assert [p.origin for p in a[:20]] != ["real"] * 20  # interleaved, not real then synthetic


def test_mix_reports_a_short_side():
    rows, rep = mix(side("r", 2, "real"), side("s", 50, "synthetic"), ratio=0.5, n=10)
    assert rep.short == ("real",) and (rep.real_used, rep.synthetic_used) == (2, 5)
    assert rep.to_dict()["real"] == {"available": 2, "wanted": 5, "used": 2} and len(rows) == 7


def test_cli_mix_squad_and_jsonl(tmp_path):
    out = tmp_path / "mixed.jsonl"
    args = [
        "--real",
        str(DATA / "human-a.json"),
        "--synthetic",
        str(DATA / "run" / "qa.jsonl"),
        "--ratio",
        "0.25",
        "--out",
        str(out),
        "--seed",
        "7",
        "--json",
    ]
    result = CliRunner().invoke(mix_command, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    # 24 real and 30 synthetic: 30 synthetic limit the total to 40 (10 real).
    assert (summary["real"]["used"], summary["synthetic"]["used"], summary["total"]) == (10, 30, 40)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert Counter(r["origin"] for r in rows) == {"real": 10, "synthetic": 30}
    real_row = next(r for r in rows if r["origin"] == "real")
    assert real_row["contexts"] and real_row["evidence"][0]["text"] == real_row["answer"]
    syn_row = next(r for r in rows if r["origin"] == "synthetic")
    assert syn_row["provenance"]["model"] == "openai/gpt-4o-mini"
    again = CliRunner().invoke(mix_command, args)
    assert again.exit_code == 0 and out.read_text(encoding="utf-8").splitlines() == [
        json.dumps(r, ensure_ascii=False) for r in rows
    ]


def test_cli_mix_errors_and_shortfall(tmp_path):
    base = [
        "--real",
        str(DATA / "human-a.json"),
        "--synthetic",
        str(DATA / "run" / "qa.jsonl"),
        "--out",
        str(tmp_path / "m.jsonl"),
    ]
    result = CliRunner().invoke(mix_command, [*base, "--ratio", "1.2"])
    assert result.exit_code == 2 and "between 0 and 1" in result.output
    result = CliRunner().invoke(mix_command, [*base, "--ratio", "0.9", "-n", "100"])
    assert (
        result.exit_code == EXIT_PARTIAL
        and "short: real has 24 rows, 90 were asked for" in result.output
    )
