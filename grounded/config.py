"""Optional `grounded.toml` in the working directory: repeated settings, validated on load.

Flags always win: settings only become the defaults of the matching command-line options.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grounded.errors import ConfigError

CONFIG_NAME = "grounded.toml"


class Settings(BaseModel):
    """Every key a `grounded.toml` may hold; names match the CLI options (dashes as underscores)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    prompt: str | None = None
    n: int | None = Field(default=None, ge=1)
    language: str | None = None
    concurrency: int | None = Field(default=None, ge=1)
    pairs_per_call: int | None = Field(default=None, ge=1)
    seed: int | None = None
    timeout: float | None = Field(default=None, gt=0)
    max_retries: int | None = Field(default=None, ge=0)
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    chunk_tokens: int | None = Field(default=None, ge=16)
    overlap_tokens: int | None = Field(default=None, ge=0)
    embedder: str | None = None
    chroma_url: str | None = None
    index: str | None = None
    threshold: float | None = Field(default=None, ge=0, le=1)
    judge: str | None = None
    reference: str | None = None


# Section name in the file -> commands whose options it feeds. Top-level keys feed every command.
SECTIONS = {
    "ingest": ("ingest", "search", "run"),
    "generate": ("generate", "run"),
    "check": ("check", "run"),
    "run": ("run",),
}
ALL_COMMANDS = ("ingest", "search", "generate", "check", "run", "report", "dedup")


def load_settings(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a config file into click `default_map` form: {command: {option: value}}."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML ({exc})") from exc

    default_map: dict[str, dict[str, Any]] = {}
    top = {k: v for k, v in raw.items() if not isinstance(v, dict)}
    for cmd in ALL_COMMANDS:
        default_map[cmd] = dict(_validate(p, top, section=None))
    for section, values in raw.items():
        if not isinstance(values, dict):
            continue
        if section not in SECTIONS:
            raise ConfigError(
                f"{p}: unknown section [{section}]",
                hint=f"use one of {', '.join('[' + s + ']' for s in SECTIONS)} or top-level keys",
            )
        for cmd in SECTIONS[section]:
            default_map[cmd].update(_validate(p, values, section=section))
    return {cmd: opts for cmd, opts in default_map.items() if opts}


def find_config(cwd: str | Path | None = None) -> Path | None:
    path = Path(cwd or Path.cwd()) / CONFIG_NAME
    return path if path.is_file() else None


def _validate(path: Path, values: dict[str, Any], *, section: str | None) -> dict[str, Any]:
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(x) for x in err["loc"])
        where = f"[{section}] " if section else ""
        raise ConfigError(f"{path}: {where}{key}: {err['msg']}") from exc
    return settings.model_dump(exclude_none=True)
