"""The CLI's commands, one module per group, imported only when their command runs."""

from __future__ import annotations

from typing import Any

import click

from grounded.plugins import Registry


class RegistryChoice(click.Choice[str]):
    """A choice among a registry's names, read when the option is used (so plugins count)."""

    def __init__(self, registry: Registry[Any]) -> None:
        super().__init__(())
        self.registry = registry

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(self.registry.names())

    @choices.setter
    def choices(self, value: Any) -> None:
        """click.Choice sets its fixed list here; the registry is the list."""
