"""Named registries for grounded's extension points (loaders, exporters, embedders).

Built-ins and third parties register the same way: a call to the registry's `register` (through
`register_loader`, `register_exporter`, `register_embedder`). A package makes its registrations
run by naming a module under the registry's entry-point group; every such module is imported on
the registry's first use (simonw/llm's `DEFAULT_PLUGINS` + entry points pattern).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Registry(Generic[T]):
    """name -> object; the `defaults` modules and the `group` entry points are imported on first use."""

    def __init__(
        self,
        what: str,
        group: str,
        *,
        defaults: tuple[str, ...] = (),
        key: Callable[[str], str] = str,
        on_change: Callable[[], None] | None = None,
        adopt: Callable[[object], None] | None = None,
    ) -> None:
        self.what = what
        self._adopt = adopt  # what an entry point names, when it names objects, not a module
        self.group = group
        self.defaults = defaults
        self._key = key
        self._on_change = on_change
        self._items: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str, obj: T, *, replace: bool = True) -> T:
        """Register `obj` under `name` (kept as is when `replace` is False and the name is taken)."""
        key = self._key(name)
        if replace or key not in self._items:
            self._items[key] = obj
            self._changed()
        return obj

    def unregister(self, name: str) -> None:
        """Remove one name (no error if it is not registered)."""
        if self._items.pop(self._key(name), None) is not None:
            self._changed()

    def get(self, name: str) -> T | None:
        self.load_plugins()
        return self._items.get(self._key(name))

    def names(self) -> list[str]:
        """Registered names, in registration order (built-ins first)."""
        self.load_plugins()
        return list(self._items)

    def items(self) -> dict[str, T]:
        """A copy of the registry."""
        self.load_plugins()
        return dict(self._items)

    def load_plugins(self, *, again: bool = False) -> None:
        """Import the built-in modules and the entry-point modules (once; `again` after installing a plugin)."""
        if self._loaded and not again:
            return
        self._loaded = True
        for module in self.defaults:
            importlib.import_module(module)
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.group):
            try:
                found = ep.load()
                if self._adopt is not None:
                    self._adopt(found)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the rest
                log.warning("%s plugin %s failed to load: %s", self.what, ep.name, exc)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()
