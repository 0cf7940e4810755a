"""Document loaders: a registry of `Callable[[Path], Iterable[Document]]` keyed by file suffix.

    >>> import grounded
    >>> docs = list(grounded.load(["examples/corpus"]))  # doctest: +SKIP

Built-in loaders (txt, md, html, pdf, docx, ...) register through `register_loader`, the same
call a third party uses; packages can also expose a module under the `grounded.loaders` entry
point group, which is imported (and so registers its loaders) on first use of the registry.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grounded.errors import LoaderError
from grounded.plugins import Registry
from grounded.types import Block, Chunk, Document

log = logging.getLogger(__name__)

Loader = Callable[[Path], Iterable[Document]]

# Modules that register the built-in loaders, imported lazily (llm's DEFAULT_PLUGINS pattern).
DEFAULT_LOADER_MODULES = ("grounded.loaders.builtin",)
ENTRY_POINT_GROUP = "grounded.loaders"
IGNORE_FILE = ".groundedignore"


def _norm_suffix(suffix: str) -> str:
    suffix = suffix.strip().lower()
    if not suffix:
        raise ValueError("empty suffix")
    return suffix if suffix.startswith(".") else "." + suffix


LOADERS: Registry[Loader] = Registry(
    "loader", ENTRY_POINT_GROUP, defaults=DEFAULT_LOADER_MODULES, key=_norm_suffix
)


def register_loader(
    suffixes: str | Iterable[str], loader: Loader | None = None, *, replace: bool = True
) -> Any:
    """Register `loader` for file suffixes (".md" or "md"); usable as a decorator."""
    names = [suffixes] if isinstance(suffixes, str) else list(suffixes)

    def add(fn: Loader) -> Loader:
        for name in names:
            LOADERS.register(name, fn, replace=replace)
        return fn

    return add(loader) if loader is not None else add


def unregister_loader(suffix: str) -> None:
    """Remove the loader for one suffix (no error if none is registered)."""
    LOADERS.unregister(suffix)


def loaders() -> dict[str, Loader]:
    """A copy of the registry: suffix -> loader."""
    return LOADERS.items()


def loader_for(path: str | Path) -> Loader | None:
    """The loader registered for a path's suffix (".tar.gz" style double suffixes first)."""
    registry = LOADERS.items()
    name = Path(path).name.lower()
    for key in sorted(registry, key=len, reverse=True):
        if name.endswith(key) and len(name) > len(key):
            return registry[key]
    return None


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file found under one of the paths given to `walk` (root is that path).

    `skipped` is set, to the reason, for a path the walk did not follow (a folder loop, a
    folder it cannot list).
    """

    path: Path
    root: Path
    skipped: str = ""


def _ignore_patterns(folder: Path) -> list[str]:
    try:
        lines = (folder / IGNORE_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def walk(paths: Iterable[str | Path]) -> Iterator[SourceFile]:
    """Files under the given paths, sorted; hidden names and `.groundedignore` globs are left out.

    Symlinks are followed, each real folder once: a link back to a folder being walked (a loop)
    is yielded with `skipped` set; a second way into a folder already walked is left out.
    A path that does not exist is yielded as-is, so the caller can report it.
    """
    walked: set[tuple[int, int]] = set()
    for raw in paths:
        root = Path(raw).expanduser()
        if not root.is_dir():
            yield SourceFile(root, root)
            continue
        ident = _folder_id(root)
        if ident in walked:
            continue
        walked.add(ident)
        yield from _walk_dir(root, root, [], [ident], walked)


def _folder_id(folder: Path) -> tuple[int, int]:
    st = folder.stat()
    return st.st_dev, st.st_ino


def _walk_dir(
    folder: Path,
    root: Path,
    patterns: list[str],
    above: list[tuple[int, int]],
    walked: set[tuple[int, int]],
) -> Iterator[SourceFile]:
    """`above`: the real folders from the root down to this one; `walked`: every one so far."""
    patterns = patterns + [
        (folder.relative_to(root) / p).as_posix() for p in _ignore_patterns(folder)
    ]
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        log.warning("cannot list %s: %s", folder, exc)
        yield SourceFile(folder, root, skipped=f"cannot list folder: {exc.strerror or exc}")
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        rel = entry.relative_to(root).as_posix()
        if any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(entry.name, p) for p in patterns):
            continue
        if not entry.is_dir():
            yield SourceFile(entry, root)
            continue
        try:
            ident = _folder_id(entry)
        except OSError:  # gone since is_dir(): the caller reports it
            yield SourceFile(entry, root)
            continue
        if ident in above:
            # Following it would walk the same folders again and again (two links to "."
            # give 2^depth paths), so it is reported, not entered.
            yield SourceFile(
                entry, root, skipped=f"folder loop: leads back to {entry.resolve()}, not followed"
            )
        elif ident in walked:
            log.debug("%s: folder already walked under another name", entry)
        else:
            walked.add(ident)
            above.append(ident)
            yield from _walk_dir(entry, root, patterns, above, walked)
            above.pop()


def load_file(path: str | Path) -> list[Document]:
    """Load one file with its registered loader; raises LoaderError with a clear reason."""
    path = Path(path)
    loader = loader_for(path)
    if loader is None:
        raise LoaderError(f"unsupported file type {path.suffix or path.name!r}")
    try:
        docs = [d for d in loader(path) if d.text.strip()]
    except LoaderError:
        raise
    except PermissionError as exc:
        raise LoaderError(f"cannot read file: {exc.strerror or exc}") from exc
    except OSError as exc:
        raise LoaderError(f"cannot read file: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - third-party parsers raise anything on junk input
        raise LoaderError(
            f"cannot parse {path.suffix or 'file'}: {type(exc).__name__}: {exc}"
        ) from exc
    if not docs:
        raise LoaderError("no text extracted")
    return docs


def load(paths: str | Path | Iterable[str | Path], *, strict: bool = False) -> Iterator[Document]:
    """Documents from files and folders (walked recursively), one stream.

    Files that cannot be loaded are logged and skipped, or raise LoaderError when `strict`.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    for src in walk(paths):
        if src.skipped:
            if strict:
                raise LoaderError(f"{src.path}: {src.skipped}")
            log.warning("skipped %s: %s", src.path, src.skipped)
            continue
        try:
            yield from load_file(src.path)
        except LoaderError as exc:
            if strict:
                raise LoaderError(f"{src.path}: {exc}") from exc
            log.warning("skipped %s: %s", src.path, exc)


# --- LangChain interop -------------------------------------------------------------------


def from_langchain(docs: Iterable[Any], *, source: str = "") -> Iterator[Document]:
    """grounded Documents from LangChain `Document`s (any LangChain loader's output).

    `metadata["source"]` becomes the source; a 0-based `page` (PyPDFLoader) becomes 1-based.
    """
    for i, lc in enumerate(docs):
        text = getattr(lc, "page_content", None)
        if text is None:
            raise LoaderError(f"not a LangChain Document: {type(lc).__name__}")
        if not text.strip():
            continue
        meta = dict(getattr(lc, "metadata", None) or {})
        src = str(meta.get("source") or source or f"langchain:{i}")
        page = meta.get("page")
        page = page + 1 if isinstance(page, int) and not isinstance(page, bool) else None
        title = str(meta.get("title") or Path(src).stem)
        blocks = (Block(0, len(text), "text", (), page),)
        yield Document.from_text(text, source=src, title=title, blocks=blocks, metadata=meta)


def to_langchain(chunks: Iterable[Chunk]) -> list[Any]:
    """LangChain `Document`s for chunks; metadata holds ids, offsets, section and page."""
    try:
        from langchain_core.documents import Document as LCDocument
    except ImportError as exc:  # pragma: no cover - a core dependency
        from grounded.errors import MissingDependencyError

        raise MissingDependencyError("LangChain interop", "langchain-core") from exc
    out = []
    for c in chunks:
        meta: dict[str, Any] = {
            "chunk_id": c.id,
            "doc_id": c.doc_id,
            "source": c.source,
            "title": c.title,
            "start": c.start,
            "end": c.end,
            "section": " > ".join(c.section),
            "tokens": c.tokens,
        }
        if c.page is not None:
            meta["page"] = c.page
        out.append(LCDocument(page_content=c.text, metadata=meta, id=c.id))
    return out


def langchain_loader(loader_cls: Callable[..., Any], **kwargs: Any) -> Loader:
    """Wrap a LangChain loader class as a grounded loader: `register_loader(".epub", langchain_loader(X))`."""

    def load_with_langchain(path: Path) -> Iterator[Document]:
        lc = loader_cls(str(path), **kwargs)
        it: Sequence[Any] | Iterator[Any] = (
            lc.lazy_load() if hasattr(lc, "lazy_load") else lc.load()
        )
        yield from from_langchain(it, source=str(path))

    return load_with_langchain


__all__ = [
    "DEFAULT_LOADER_MODULES",
    "LOADERS",
    "Loader",
    "SourceFile",
    "from_langchain",
    "langchain_loader",
    "load",
    "load_file",
    "loader_for",
    "loaders",
    "register_loader",
    "to_langchain",
    "unregister_loader",
    "walk",
]
