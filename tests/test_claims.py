"""Long answers: claims with exact spans, a verdict per claim, unsupported claims by their span."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import grounded
from grounded.checker.claims import split_claims
from grounded.checker.long_answers import source_chunks, substitution
from grounded.cli import main
from grounded.types import to_jsonable, verdict_from_dict

FIXTURE = Path(__file__).parent / "data" / "claims" / "long.jsonl"
ROWS = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
SOURCE = ROWS[0]["context"]
FAITHFUL = ROWS[0]["answer"]


def _texts(answer: str, question: str = "") -> list[str]:
    claims = split_claims(answer, question=question)
    for c in claims:
        assert answer[c.start : c.end] == c.text
    return [c.text for c in claims]


def test_spans_slice_the_answer_exactly():
    answer = (
        "The bridge was opened in 1862, closed in 1901 and rebuilt in 1910; it carries a road.\n"
        "- Its arches are stone.\n"
        "2. The mill burned down in 1936 and the town bought the site."
    )
    assert _texts(answer) == [
        "The bridge was opened in 1862",
        "closed in 1901",
        "rebuilt in 1910",
        "it carries a road",
        "Its arches are stone",
        "The mill burned down in 1936",
        "the town bought the site",
    ]


def test_coordinated_verbs_sharing_an_object_stay_one_claim():
    assert _texts("The company designs and builds bridges.") == [
        "The company designs and builds bridges"
    ]


def test_meta_prefix_is_stripped_and_non_claims_dropped():
    answer = (
        "Based on the passage, the bridge opened in 1852. According to the text, it has three arches. "
        "The passage says that the mill burned down in 1936. The passage does not mention the architect. "
        "Sure! I hope this helps. Is there anything else? Here are the main points:"
    )
    assert _texts(answer) == [
        "the bridge opened in 1852",
        "it has three arches",
        "the mill burned down in 1936",
    ]


def test_framing_is_stripped_hedges_dropped_and_titles_kept():
    answer = (
        "Sure! Here is the answer to your question: The bridge opened in 1852. It is worth noting that "
        "the mill burned down in 1936. It is possible that the mill was rebuilt. Please note that tolls "
        "were charged.\n**Arches**: The bridge has three arches.\n"
        'He recorded "Metallica: A Tribute to Iron Maiden" that year.'
    )
    assert _texts(answer) == [
        "The bridge opened in 1852",
        "the mill burned down in 1936",
        "tolls were charged",
        "The bridge has three arches",
        'He recorded "Metallica: A Tribute to Iron Maiden" that year',
    ]


def test_shared_subject_and_auxiliary_are_filled_in_for_checking():
    claims = split_claims("The bridge was opened in 1862 and rebuilt in 1910.")
    assert [c.checked for c in claims] == [
        "The bridge was opened in 1862",
        "The bridge was rebuilt in 1910",
    ]


def test_a_pronoun_claim_is_checked_with_the_previous_subject():
    source = "The Eiffel Tower stands in Paris and was completed in 1889. The Crystal Palace in London was completed in 1851."
    answer = "The Eiffel Tower stands in Paris. It was completed in 1851."
    claims = split_claims(answer)
    assert claims[1].text == "It was completed in 1851"
    assert claims[1].checked == "The Eiffel Tower was completed in 1851"
    verdict = grounded.check_long(answer, [source])
    assert not verdict.supported
    (bad,) = [c for c in verdict.claims if not c.supported]
    assert answer[bad.start : bad.end] == "It was completed in 1851"
    # the same pronoun after the other subject is supported: the antecedent decides
    assert grounded.check_long(
        "The Crystal Palace stood in London. It was completed in 1851.", [source]
    ).supported


def test_a_leading_pronoun_takes_the_questions_subject():
    (claim,) = split_claims(
        "It was completed in 1889.", question="When was the Eiffel Tower completed?"
    )
    assert claim.checked == "the Eiffel Tower was completed in 1889"


def test_a_faithful_answer_passes():
    verdict = grounded.check_long(FAITHFUL, [SOURCE], question=ROWS[0]["question"])
    assert verdict.supported, [(c.text, c.reasons) for c in verdict.claims if not c.supported]
    assert len(verdict.claims) >= 4 and all(c.supported for c in verdict.claims)
    assert verdict.score == 1.0 and verdict.signals["supported_fraction"] == 1.0
    assert not any(r.code == "unsupported_claim" for r in verdict.reasons)


@pytest.mark.parametrize(
    ("fault", "wrong"),
    [
        ("opened to traffic in 1857", "1857"),  # a year changed
        ("Heavy lorries are allowed on it", "are allowed"),  # the negation dropped
        ("by Thomas Nash", "Nash"),  # a name the source does not give
    ],
)
def test_one_fault_fails_with_its_span(fault, wrong):
    original = {
        "1857": "opened to traffic in 1852",
        "are allowed": "Heavy lorries are not allowed on it",
        "Nash": "by Thomas Clarke",
    }[wrong]
    answer = FAITHFUL.replace(original, fault)
    verdict = grounded.check_long(answer, [SOURCE])
    assert not verdict.supported
    flagged = [r for r in verdict.reasons if r.code == "unsupported_claim"]
    assert len(flagged) == 1
    at = answer.index(wrong)
    assert flagged[0].start <= at < flagged[0].end
    assert 0 < verdict.signals["supported_fraction"] < 1


def test_a_swapped_name_from_the_same_source_is_caught():
    source = (
        "Denver linebacker Von Miller was named Super Bowl MVP after recording five solo tackles. "
        "Carolina quarterback Cam Newton was sacked six times."
    )
    faithful = (
        "Denver linebacker Von Miller was named Super Bowl MVP after recording five solo tackles."
    )
    swapped = faithful.replace("Von Miller", "Cam Newton")  # every word of it is in the source
    assert grounded.check_long(faithful, [source]).supported
    verdict = grounded.check_long(swapped, [source])
    assert not verdict.supported
    (bad,) = [c for c in verdict.claims if not c.supported]
    assert "substituted_value" in [r.code for r in bad.reasons]
    assert bad.start <= swapped.index("Cam Newton") < bad.end
    assert substitution(faithful, source_chunks([source])) is None


def test_long_verdict_round_trips_through_json():
    verdict = grounded.check_long(FAITHFUL.replace("1852", "1857"), [SOURCE])
    assert verdict_from_dict(json.loads(json.dumps(to_jsonable(verdict)))) == verdict


def test_cli_long_answers_writes_claims_and_spans(tmp_path):
    result = CliRunner().invoke(
        main, ["check", str(FIXTURE), "--out", str(tmp_path), "--long-answers", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["kept"], summary["rejected"]) == (1, 2)
    kept = [json.loads(x) for x in (tmp_path / "qa.jsonl").read_text().splitlines()]
    rejected = [json.loads(x) for x in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    claims = kept[0]["verdict"]["claims"]
    assert len(claims) >= 4 and all(c["supported"] for c in claims)
    assert {"text", "start", "end", "supported", "score", "reasons"} <= set(claims[0])
    for row, wrong in zip(rejected, ("1857", "are allowed"), strict=True):
        answer = row["pair"]["answer"]
        spans = [(r["start"], r["end"]) for r in row["reasons"] if r["code"] == "unsupported_claim"]
        assert len(spans) == 1 and spans[0][0] <= answer.index(wrong) < spans[0][1]
        bad = [c for c in row["pair"]["verdict"]["claims"] if not c["supported"]]
        assert [answer[c["start"] : c["end"]] for c in bad] == [c["text"] for c in bad]


def test_cli_checks_summary_kind_claim_by_claim_without_the_flag(tmp_path):
    result = CliRunner().invoke(main, ["check", str(FIXTURE), "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    rejected = [json.loads(x) for x in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    summary_rows = [r for r in rejected if r["pair"]["kind"] == "summary"]
    assert len(summary_rows) == 1
    assert [r["code"] for r in summary_rows[0]["reasons"]].count("unsupported_claim") == 1
    others = [r for r in rejected if r["pair"]["kind"] != "summary"]
    assert all(not r["pair"]["verdict"]["claims"] for r in others)  # pair mode, one claim
