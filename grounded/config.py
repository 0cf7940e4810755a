"""Optional `grounded.toml` in the working directory: repeated settings, validated on load.

Flags always win: settings only become the defaults of the matching command-line options.
The keys a file may hold are read from the click commands themselves (every long option, dashes
as underscores: `--api-base` -> `api_base`, `-n` -> `n`), and each value is checked with that
option's own type, so the file accepts exactly what the command line does and cannot drift.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from grounded.errors import ConfigError

CONFIG_NAME = "grounded.toml"

CommandPath = tuple[str, ...]  # ("ingest",), ("eval", "dataset")

# Sections that also feed other commands; any other command name is a section for itself alone,
# and `[eval.dataset]`-style tables reach subcommands. Top-level keys feed every command.
SHARED_SECTIONS: dict[str, tuple[str, ...]] = {
    "ingest": ("ingest", "search", "run"),
    "generate": ("generate", "run"),
    "check": ("check", "run"),
}


def load_settings(path: str | Path, *, group: click.Group) -> dict[str, Any]:
    """Read a config file into click `default_map` form for the commands of `group` (the CLI):
    {command: {option: value}}."""
    p = Path(path)
    raw = _read(p)
    commands = command_table(group)
    layers: list[
        tuple[int, CommandPath, str, Mapping[str, Any]]
    ] = []  # (rank, command, label, values)
    top = {k: v for k, v in raw.items() if not isinstance(v, dict)}
    _check_keys(p, "", top, commands.values())
    layers += [(0, cmd, "", top) for cmd in commands]
    for section, values in raw.items():
        if isinstance(values, dict):
            layers += _section_layers(p, section, values, commands)
    default_map: dict[str, Any] = {}
    for _, cmd, label, values in sorted(layers, key=lambda layer: layer[0]):
        options = option_keys(commands[cmd])
        for key, value in values.items():
            if key in options:
                param = options[key]
                _target(default_map, cmd)[param.name] = _convert(
                    p, label, key, value, param, commands[cmd], cmd
                )
    return _prune(default_map)


def find_config(cwd: str | Path | None = None) -> Path | None:
    path = Path(cwd or Path.cwd()) / CONFIG_NAME
    return path if path.is_file() else None


def command_table(group: click.Group) -> dict[CommandPath, click.Command]:
    """Every runnable command of `group` (subcommands of groups included) by its path."""
    out: dict[CommandPath, click.Command] = {}
    _walk(group, (), click.Context(group, info_name="grounded"), out)
    return out


def option_keys(command: click.Command) -> dict[str, click.Option]:
    """Settings keys of a command: each option's flag names without dashes, `-` as `_`."""
    keys: dict[str, click.Option] = {}
    for param in command.params:
        if not isinstance(param, click.Option) or not param.expose_value or param.name is None:
            continue
        longs = [o for o in param.opts if o.startswith("--")] or list(param.opts)
        for opt in longs:
            keys[opt.lstrip("-").replace("-", "_")] = param
    return keys


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from exc


def _walk(
    group: click.Group,
    prefix: CommandPath,
    ctx: click.Context,
    out: dict[CommandPath, click.Command],
) -> None:
    for name in group.list_commands(ctx):
        try:
            cmd = group.get_command(ctx, name)
        except ImportError:  # a lazily listed command whose module is absent cannot take settings
            continue
        if isinstance(cmd, click.Group):
            _walk(cmd, (*prefix, name), click.Context(cmd, parent=ctx, info_name=name), out)
        elif cmd is not None:
            out[(*prefix, name)] = cmd


def _section_layers(
    path: Path, section: str, values: dict[str, Any], commands: Mapping[CommandPath, click.Command]
) -> list[tuple[int, CommandPath, str, Mapping[str, Any]]]:
    """The (rank, command, label, values) layers a `[section]` contributes; later ranks win."""
    label = f"[{section}] "
    if section in SHARED_SECTIONS or (section,) in commands:
        targets = [
            c for c in commands if c[0] in SHARED_SECTIONS.get(section, (section,)) and len(c) == 1
        ]
        _check_keys(path, label, values, [commands[c] for c in targets])
        return [(2 if c == (section,) else 1, c, label, values) for c in targets]
    subs = {c[1:]: c for c in commands if c[0] == section and len(c) > 1}
    if not subs:
        names = sorted({*SHARED_SECTIONS, *(c[0] for c in commands)})
        raise ConfigError(
            f"{path}: unknown section [{section}]",
            hint=f"use one of {', '.join('[' + s + ']' for s in names)} or top-level keys",
        )
    shared = {k: v for k, v in values.items() if not isinstance(v, dict)}
    _check_keys(path, label, shared, [commands[c] for c in subs.values()])
    layers: list[tuple[int, CommandPath, str, Mapping[str, Any]]] = [
        (1, c, label, shared) for c in subs.values()
    ]
    for sub, sub_values in values.items():
        if not isinstance(sub_values, dict):
            continue
        if (sub,) not in subs:
            raise ConfigError(
                f"{path}: unknown section [{section}.{sub}]",
                hint=f"use one of {', '.join(f'[{section}.{s[0]}]' for s in sorted(subs))}",
            )
        sub_label = f"[{section}.{sub}] "
        _check_keys(path, sub_label, sub_values, [commands[subs[(sub,)]]])
        layers.append((2, subs[(sub,)], sub_label, sub_values))
    return layers


def _check_keys(path: Path, label: str, values: Mapping[str, Any], commands: Any) -> None:
    """Every key must be an option of at least one of the commands the section feeds."""
    known: set[str] = set()
    for cmd in commands:
        known |= option_keys(cmd).keys()
    for key in values:
        if key not in known:
            raise ConfigError(
                f"{path}: {label}{key}: unknown key",
                hint="keys are the option names of the commands this section feeds, with underscores",
            )


def _convert(
    path: Path,
    label: str,
    key: str,
    value: Any,
    param: click.Option,
    command: click.Command,
    cmd: CommandPath,
) -> Any:
    """The value as the option's type makes it; a bad one names the file, the key and the command."""
    where = f"{path}: {label}{key}"
    if isinstance(value, (list, dict)) and not param.multiple and param.nargs == 1:
        raise ConfigError(
            f"{where}: expected one value, got a {'list' if isinstance(value, list) else 'table'}"
        )
    try:
        return param.type_cast_value(click.Context(command), value)
    except click.BadParameter as exc:
        raise ConfigError(f"{where}: {exc.message} (for grounded {' '.join(cmd)})") from exc


def _target(default_map: dict[str, Any], cmd: CommandPath) -> dict[str, Any]:
    node = default_map
    for name in cmd:
        node = node.setdefault(name, {})
    return node


def _prune(node: dict[str, Any]) -> dict[str, Any]:
    """Drop commands that got no settings (nested groups included)."""
    out: dict[str, Any] = {}
    for name, value in node.items():
        if isinstance(value, dict) and not any(isinstance(v, dict) for v in value.values()):
            if value:
                out[name] = value
        elif isinstance(value, dict):
            pruned = _prune(value)
            if pruned:
                out[name] = pruned
        else:
            out[name] = value
    return out
