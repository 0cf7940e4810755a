"""Prompt templates: built-ins load, bad YAML is a PromptError naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from grounded.errors import PromptError
from grounded.prompting import Reply, builtin_names, load_prompt

DATA = Path(__file__).parent / "data" / "generate"


def test_builtins_load_and_declare_their_kind():
    assert builtin_names() == ["factoid", "multi_hop", "unanswerable"]
    kinds = {name: load_prompt(name).kind for name in builtin_names()}
    assert kinds == {"factoid": "factoid", "multi_hop": "multi_hop", "unanswerable": "unanswerable"}
    assert load_prompt("multi_hop").spec.sources == 2


def test_builtin_examples_are_valid_replies():
    for name in builtin_names():
        for ex in load_prompt(name).spec.examples:
            assert Reply.model_validate(ex.reply).pairs


def test_messages_fill_variables_and_language():
    p = load_prompt("factoid")
    msgs = p.messages(["The sky is blue."], n=2, language="de")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert '<passage n="1">\nThe sky is blue.\n</passage>' in msgs[-1]["content"]
    assert "Write 2 question-answer pairs in German" in msgs[-1]["content"]
    assert "$" not in msgs[-1]["content"]


def test_custom_prompt_by_path_with_hash_and_escaped_dollar():
    path = DATA / "custom_prompt.yaml"
    p = load_prompt(str(path))
    assert p.name == "definitions" and p.spec.version == "2"
    assert len(p.sha256) == 64
    assert "Cost: $0." in p.render(passages="x", n=1, language="English")
    assert p.response_format(3)["json_schema"]["schema"]["properties"]["pairs"]["maxItems"] == 3


def test_hash_changes_with_content(tmp_path):
    src = (DATA / "custom_prompt.yaml").read_text()
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(src)
    b.write_text(src.replace("definition questions", "definition question"))
    assert load_prompt(a).sha256 != load_prompt(b).sha256


def _write(tmp_path, **changes):
    data = yaml.safe_load((DATA / "custom_prompt.yaml").read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"temperature": 0.3}, "temperature: unknown key"),
        ({"user": "$passages and $topic"}, "user: variable $topic is not declared"),
        (
            {"variables": ["passages", "n", "language", "topic"]},
            "variables: unknown variable 'topic'",
        ),
        ({"variables": ["passages", "language"]}, "user: variable $n is not declared"),
        ({"user": "Write $n questions"}, "the template must include $passages"),
        ({"user": None}, "user: Field required"),
        ({"kind": "essay"}, "kind:"),
        ({"output_schema": {"type": "object"}}, "output_schema: must describe"),
        (
            {"examples": [{"passages": ["x"], "reply": {"pairs": [{"question": "Why?"}]}}]},
            "examples.0.reply",
        ),
        (
            {"examples": [{"passages": ["x"], "reply": {}, "shots": 2}]},
            "examples.0.shots: unknown key",
        ),
    ],
)
def test_invalid_templates_name_file_and_key(tmp_path, changes, message):
    path = _write(tmp_path, **changes)
    with pytest.raises(PromptError) as err:
        load_prompt(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_unknown_name_and_bad_yaml(tmp_path):
    with pytest.raises(PromptError, match="unknown prompt 'nope'"):
        load_prompt("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(PromptError, match="not valid YAML"):
        load_prompt(bad)
    with pytest.raises(PromptError, match="cannot read prompt"):
        load_prompt(tmp_path / "missing.yaml")
