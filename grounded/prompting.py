"""Prompt templates as data: YAML files validated on load, rendered into chat messages.

A template names its variables (`$passages`, `$n`, `$language`), declares the JSON schema of the
reply it asks for, and may carry few-shot examples. Anything unknown, undeclared or missing is a
`PromptError` naming the file and the key. Built-ins live in `grounded/prompts/*.yaml`; users pass
a name or a path.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from grounded.errors import PromptError
from grounded.llm import validation_problems

# Variables generate() can fill; a template may use any subset.
KNOWN_VARIABLES = ("passages", "n", "language")

LANGUAGES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "pl": "Polish",
    "sv": "Swedish",
    "ru": "Russian",
    "uk": "Ukrainian",
    "zh": "Chinese",
    "ja": "Japanese",
    "ko": "Korean",
    "ar": "Arabic",
    "hi": "Hindi",
    "tr": "Turkish",
}

# $name or ${name}; $$ is a literal dollar (string.Template's syntax, parsed here for 3.10).
_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<named>[_a-zA-Z][_a-zA-Z0-9]*)|\{(?P<braced>[_a-zA-Z][_a-zA-Z0-9]*)\})"
)


# --- the reply every generation template must produce ------------------------------------------


class ReplyPair(BaseModel):
    """One generated pair as the model wrote it: quote(s) first, then answer, then question."""

    model_config = ConfigDict(extra="ignore")

    quote: str | None = None
    quotes: list[str] = Field(default_factory=list)
    answer: str = ""
    question: str = Field(min_length=3)

    @model_validator(mode="after")
    def _has_quote(self) -> ReplyPair:
        if not self.all_quotes:
            raise ValueError(
                "each pair needs a non-empty 'quote' (or 'quotes') copied from a passage"
            )
        return self

    @property
    def all_quotes(self) -> list[str]:
        out = [
            q for q in ([self.quote] if self.quote else []) + list(self.quotes) if q and q.strip()
        ]
        return list(dict.fromkeys(out))


class Reply(BaseModel):
    """The reply object: `{"pairs": [...]}` (a bare single pair is accepted too)."""

    model_config = ConfigDict(extra="ignore")

    pairs: list[ReplyPair]

    @model_validator(mode="before")
    @classmethod
    def _wrap_single(cls, data: Any) -> Any:
        if isinstance(data, dict) and "pairs" not in data and "question" in data:
            return {"pairs": [data]}
        return data


@dataclass(slots=True)
class ParsedReply:
    """A reply taken apart pair by pair: the usable pairs, and every dropped part with why."""

    pairs: list[ReplyPair]
    dropped: list[tuple[str, str, str]]  # (reason code, the raw text of the part, why)
    error: str = ""  # what is wrong with the reply as a whole ("" when it parsed)
    truncated: bool = False

    @property
    def complete(self) -> bool:
        """True when nothing of the reply was lost."""
        return not (self.dropped or self.error)

    def problems(self) -> str:
        """One line naming everything that was wrong, for a repair request or a rejection."""
        parts = [self.error] if self.error else []
        parts += [f"a dropped pair: {why}" for _, _, why in self.dropped[:5]]
        return "; ".join(parts)


_PAIRS_KEY = re.compile(r'"pairs"\s*:\s*\[')


def parse_reply(text: str) -> ParsedReply:
    """Every valid pair of a reply, each invalid one dropped with its reason.

    Pairs are validated one by one, so one bad pair does not cost the good ones beside it, and a
    reply cut off mid-way (max tokens) keeps the pair objects that were complete.
    """
    decoder = json.JSONDecoder()
    m = _PAIRS_KEY.search(text)
    if m is not None:
        data = _object_around(text, m.start(), decoder)
        if data is None:
            return _salvage(text, m.end(), decoder)
        return _validate_items(data.get("pairs"))
    from grounded.llm import extract_json

    try:
        data = extract_json(text)
    except ValueError as exc:
        return ParsedReply([], [], str(exc))
    if "question" in data:  # a bare single pair
        return _validate_items([data])
    return ParsedReply([], [], "schema mismatch: the reply has no 'pairs' list")


def _object_around(text: str, key_pos: int, decoder: json.JSONDecoder) -> dict[str, Any] | None:
    """The complete JSON object holding the `"pairs"` key at `key_pos`, or None (truncated)."""
    pos = text.find("{")
    while 0 <= pos < key_pos:
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            obj, end = None, -1
        if isinstance(obj, dict) and end > key_pos and "pairs" in obj:
            return obj
        pos = text.find("{", pos + 1)
    return None


def _salvage(text: str, pos: int, decoder: json.JSONDecoder) -> ParsedReply:
    """The complete objects of a `pairs` array that was cut off; the rest is the dropped tail."""
    items: list[Any] = []
    tail = ""
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            break
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            tail = text[pos:]
            break
        items.append(obj)
    parsed = _validate_items(items)
    parsed.truncated = True
    parsed.error = f"the reply was cut off after {len(items)} complete pair(s)"
    if tail.strip():
        parsed.dropped.append(("truncated_reply", tail, "cut off before the pair was complete"))
    return parsed


def _validate_items(items: Any) -> ParsedReply:
    if not isinstance(items, list):
        return ParsedReply([], [], "schema mismatch: 'pairs' is not a list")
    out = ParsedReply([], [])
    for item in items:
        try:
            out.pairs.append(ReplyPair.model_validate(item))
        except ValidationError as exc:
            out.dropped.append(
                (
                    "invalid_pair",
                    json.dumps(item, ensure_ascii=False),
                    validation_problems(exc, limit=3, root="(pair)"),
                )
            )
    if not items:
        out.error = "the reply has no pairs"
    return out


# --- the template file -------------------------------------------------------------------------


class Example(BaseModel):
    """A few-shot example: the passages shown and the reply expected."""

    model_config = ConfigDict(extra="forbid")

    passages: list[str] = Field(min_length=1)
    n: int = Field(default=1, ge=1)
    reply: dict[str, Any]


class PromptSpec(BaseModel):
    """The YAML schema of a prompt template (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    version: str = "1"
    description: str = ""
    kind: Literal["factoid", "multi_hop", "unanswerable"] = "factoid"
    sources: int = Field(default=1, ge=1, le=5, description="passages shown per call")
    system: str = ""
    user: str = Field(min_length=1)
    variables: list[str]
    output_schema: dict[str, Any]
    examples: list[Example] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _coerce_version(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("version"), (int, float)):
            data = {**data, "version": str(data["version"])}
        return data


@dataclass(frozen=True, slots=True)
class Prompt:
    """A validated template plus where it came from and the sha256 of its file content."""

    spec: PromptSpec
    path: str
    sha256: str

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    def response_format(self, n: int, style: str = "json_schema") -> dict[str, Any] | None:
        """The response format asking for at most `n` pairs.

        style: `json_schema` (OpenAI structured outputs, translated by litellm for other hosts),
        `json_object` (`{"type": "json_object", "schema": ...}`: llama.cpp's server, Anyscale) or
        `none` (the schema is only described in the prompt).
        """
        if style == "none":
            return None
        schema = json.loads(json.dumps(self.spec.output_schema))
        pairs = schema.get("properties", {}).get("pairs")
        if isinstance(pairs, dict):
            pairs["maxItems"] = max(1, n)
        if style == "json_object":
            return {"type": "json_object", "schema": schema}
        if style != "json_schema":
            raise PromptError(
                f"unknown response format style {style!r} (json_schema, json_object, none)"
            )
        return {
            "type": "json_schema",
            "json_schema": {"name": "qa_pairs", "schema": schema, "strict": False},
        }

    def render(self, **values: Any) -> str:
        """The user message with every declared variable filled in."""
        return self._fill(self.spec.user, "user", values)

    def messages(
        self, passages: Sequence[str], *, n: int, language: str = "en"
    ) -> list[dict[str, str]]:
        """System prompt, few-shot turns, then the request for these passages."""
        lang = LANGUAGES.get(language.lower(), language)
        out: list[dict[str, str]] = []
        if self.spec.system.strip():
            out.append(
                {
                    "role": "system",
                    "content": self._fill(
                        self.spec.system, "system", {"passages": "", "n": n, "language": lang}
                    ),
                }
            )
        for ex in self.spec.examples:
            out.append(
                {
                    "role": "user",
                    "content": self.render(
                        passages=format_passages(ex.passages), n=ex.n, language=lang
                    ),
                }
            )
            out.append({"role": "assistant", "content": json.dumps(ex.reply, ensure_ascii=False)})
        out.append(
            {
                "role": "user",
                "content": self.render(passages=format_passages(passages), n=n, language=lang),
            }
        )
        return out

    def _fill(self, template: str, field: str, values: Mapping[str, Any]) -> str:
        declared = set(self.spec.variables)

        def sub(m: re.Match[str]) -> str:
            if m.group("escaped"):
                return "$"
            name = m.group("named") or m.group("braced")
            if name not in declared:
                raise PromptError(
                    f"{self.path}: {field}: variable ${name} is not declared in 'variables'"
                )
            if name not in values:
                raise PromptError(f"{self.path}: {field}: no value for variable ${name}")
            return str(values[name])

        return _VAR.sub(sub, template)


def format_passages(passages: Sequence[str]) -> str:
    """Number the passages in tags a small model can follow and quote from."""
    return "\n\n".join(
        f'<passage n="{i}">\n{text.strip()}\n</passage>' for i, text in enumerate(passages, 1)
    )


def builtin_names() -> list[str]:
    root = resources.files("grounded.prompts")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def load_prompt(name_or_path: str | Path) -> Prompt:
    """A built-in template by name (`factoid`, `multi_hop`, `unanswerable`) or a YAML file path."""
    text_path = str(name_or_path)
    path = Path(text_path)
    if path.suffix in (".yaml", ".yml") or path.exists() or "/" in text_path:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise PromptError(f"cannot read prompt {path}: {exc.strerror or exc}") from exc
        return parse_prompt(raw, str(path))
    resource = resources.files("grounded.prompts") / f"{text_path}.yaml"
    if not resource.is_file():
        raise PromptError(
            f"unknown prompt {text_path!r}",
            hint=f"built-ins: {', '.join(builtin_names())}; or pass a path to a YAML file",
        )
    return parse_prompt(resource.read_bytes(), f"grounded/prompts/{text_path}.yaml")


def parse_prompt(raw: bytes, origin: str) -> Prompt:
    """Validate a template's YAML bytes; every problem names `origin` and the key."""
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PromptError(f"{origin}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PromptError(f"{origin}: expected a mapping of keys, got {type(data).__name__}")
    try:
        spec = PromptSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
        msg = "unknown key" if err.get("type") == "extra_forbidden" else err.get("msg", "invalid")
        raise PromptError(f"{origin}: {loc}: {msg}") from exc
    prompt = Prompt(spec=spec, path=origin, sha256=hashlib.sha256(raw).hexdigest())
    _check_variables(prompt)
    _check_schema(prompt)
    for i, ex in enumerate(spec.examples):
        try:
            Reply.model_validate(ex.reply)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first.get("loc", ()))
            raise PromptError(f"{origin}: examples.{i}.reply: {loc}: {first.get('msg')}") from exc
    return prompt


def _check_variables(prompt: Prompt) -> None:
    spec, origin = prompt.spec, prompt.path
    for var in spec.variables:
        if var not in KNOWN_VARIABLES:
            raise PromptError(
                f"{origin}: variables: unknown variable {var!r}",
                hint=f"available: {', '.join(KNOWN_VARIABLES)}",
            )
    used: set[str] = set()
    for field, template in (("system", spec.system), ("user", spec.user)):
        for m in _VAR.finditer(template):
            name = m.group("named") or m.group("braced")
            if name is None:
                continue
            if name not in spec.variables:
                raise PromptError(
                    f"{origin}: {field}: variable ${name} is not declared in 'variables'"
                )
            used.add(name)
    if "passages" not in used:
        raise PromptError(f"{origin}: user: the template must include $passages")


def _check_schema(prompt: Prompt) -> None:
    schema, origin = prompt.spec.output_schema, prompt.path
    try:
        item = schema["properties"]["pairs"]["items"]["properties"]
    except (KeyError, TypeError):
        raise PromptError(
            f"{origin}: output_schema: must describe an object with a 'pairs' array of objects"
        ) from None
    if "question" not in item or not ({"quote", "quotes"} & set(item)):
        raise PromptError(
            f"{origin}: output_schema: pairs items need 'question' and 'quote' (or 'quotes')"
        )
