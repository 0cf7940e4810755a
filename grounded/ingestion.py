"""Ingest: walk files, load, chunk, embed and index them, streaming and incrementally.

    >>> import grounded
    >>> summary = grounded.ingest(["examples/corpus"], index="index")  # doctest: +SKIP
    >>> summary.documents, summary.chunks, summary.skipped  # doctest: +SKIP

Re-ingesting adds nothing for unchanged files (mtime and size, then content hash); a changed file
replaces its chunks; a deleted file's chunks go (for files under the folders being ingested);
identical documents under two names are stored once, with both paths kept as sources.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grounded.chunking import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_TOKENS, chunk_document
from grounded.embed import DEFAULT_EMBEDDER
from grounded.errors import ConfigError, IndexStoreError, LoaderError
from grounded.executors import Executor, LocalExecutor, ordered, picklable
from grounded.index import INGEST_RESUME_HINT, FileRecord, Index
from grounded.loaders import SourceFile, load_file, loaders, walk
from grounded.rundir import disk_full_error
from grounded.types import Chunk, Document, to_jsonable

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_BATCH = 256  # chunks embedded and upserted together
# Worker processes chunk documents up to this size; a larger one comes back unchunked and is
# chunked here as a stream, so its chunks never sit in memory (or a pickle) all at once.
WORKER_CHUNK_CHARS = 1_000_000


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file that was not ingested, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class IngestSummary:
    """What one ingest did; `documents` and `chunks` are the index totals afterwards."""

    index: str
    embedder: str
    documents: int
    chunks: int
    files: int  # files looked at
    added: int  # new files ingested
    unchanged: int  # files already indexed as they are
    replaced: int  # files whose content changed
    removed: int  # files gone from disk (their chunks removed)
    duplicates: int  # files whose document was already stored under another path
    documents_added: int
    chunks_added: int
    chunks_removed: int
    embedded: int  # chunk embeddings computed
    embeddings_cached: int  # chunk embeddings taken from the cache
    seconds: float
    skipped: tuple[Skipped, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = to_jsonable(self)
        return out


@dataclass
class _Tally:
    files: int = 0
    added: int = 0
    unchanged: int = 0
    replaced: int = 0
    removed: int = 0
    duplicates: int = 0
    documents_added: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    skipped: list[Skipped] = field(default_factory=list)


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class _Todo:
    path: Path
    key: str
    mtime: float
    size: int
    digest: str
    prev: FileRecord | None


Loaded = list[tuple[Document, list[Chunk] | None]]  # a file's documents, chunked or not yet


def load_and_chunk(
    path: str, chunk_tokens: int, overlap_tokens: int, max_chars: int | None = None
) -> tuple[Loaded, str | None]:
    """Load one file and chunk its documents of up to `max_chars` characters (all when None; the
    others get None, to be chunked as a stream); (results, None) or ([], reason it failed)."""
    try:
        docs = load_file(Path(path))
    except LoaderError as exc:
        return [], str(exc)
    out: Loaded = []
    for d in docs:
        small = max_chars is None or len(d.text) <= max_chars
        chunks = (
            list(chunk_document(d, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens))
            if small
            else None
        )
        out.append((d, chunks))
    return out, None


def _init_worker(registry: dict[str, Any]) -> None:
    from grounded import loaders as registry_module

    registry_module.loaders()  # built-ins and entry points first
    for suffix, fn in registry.items():
        registry_module.register_loader(suffix, fn)


class _Ingester:
    def __init__(
        self,
        index: Index,
        *,
        chunk_tokens: int,
        overlap_tokens: int,
        max_bytes: int,
        batch_size: int,
        progress: _Progress,
    ) -> None:
        self.index = index
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self.params = f"cl100k_base/{chunk_tokens}/{overlap_tokens}"
        self.max_bytes = max_bytes
        self.batch_size = batch_size
        self.embedder = index.cached_embedder()
        self.tally = _Tally()
        self.progress = progress
        self._chunks: list[Chunk] = []  # not embedded yet
        self._unflushed = 0  # chunks of documents not yet in the manifest
        self._docs: list[tuple[str, str, str, int, int, str]] = []
        self._files: list[tuple[FileRecord, tuple[str, ...]]] = []  # (new record, old doc ids)
        self._pending_docs: set[str] = set()

    # A document goes to the manifest only after its chunks are stored, so an interrupted
    # ingest leaves no document that looks complete but is not; rerunning finishes the job.
    def flush(self) -> None:
        self._store_chunks()
        if self._docs:
            self.index.manifest.put_docs(self._docs)
        for rec, old_ids in self._files:
            self.index.manifest.put_file(rec)
            self._drop_orphans(set(old_ids) - set(rec.doc_ids))
        self._docs, self._files = [], []
        self._pending_docs.clear()
        self._unflushed = 0

    def _store_chunks(self) -> None:
        """Embed and upsert the chunks waiting; their documents reach the manifest in flush."""
        if not self._chunks:
            return
        vecs = self.embedder.embed([c.text for c in self._chunks])
        self.index.add(self._chunks, vecs)
        self.tally.chunks_added += len(self._chunks)
        self.progress.embedded(len(self._chunks))
        self._chunks = []

    def _drop_orphans(self, doc_ids: Iterable[str]) -> None:
        """Documents a path no longer holds: delete them, or re-point them at a remaining copy."""
        manifest = self.index.manifest
        for doc_id in doc_ids:
            sources = manifest.sources_of(doc_id)
            if not sources:
                self.tally.chunks_removed += self.index.delete_document(doc_id)
            elif manifest.doc_source(doc_id) not in sources:
                self.index.set_source(doc_id, sources[0])

    def forget(self, path: str) -> None:
        """Remove a file from the manifest and the chunks only it referenced."""
        rec = self.index.manifest.file(path)
        if rec is None:
            return
        self.index.manifest.remove_file(path)
        self._drop_orphans(rec.doc_ids)

    def skip(self, path: Path | str, reason: str) -> None:
        self.tally.skipped.append(Skipped(str(path), reason))

    def check(self, path: Path) -> _Todo | None:
        """Decide what a file needs: None when it is skipped or unchanged, else a load."""
        t = self.tally
        key = str(path.resolve()) if path.exists() else str(path.absolute())
        try:
            st = path.stat()
        except FileNotFoundError:
            self.skip(path, "no such file or directory")
            return None
        except OSError as exc:
            self.skip(path, f"cannot read file: {exc.strerror or exc}")
            return None
        if path.is_dir():
            self.skip(path, "cannot list folder")
            return None
        t.files += 1
        prev = self.index.manifest.file(key)
        if st.st_size > self.max_bytes:
            self.skip(path, f"file too large ({st.st_size:,} bytes > max {self.max_bytes:,})")
            self.forget(key)
            return None
        if (
            prev
            and prev.params == self.params
            and prev.mtime == st.st_mtime
            and prev.size == st.st_size
        ):
            t.unchanged += 1
            return None
        try:
            digest = _file_hash(path)
        except OSError as exc:
            self.skip(path, f"cannot read file: {exc.strerror or exc}")
            return None
        if prev and prev.params == self.params and prev.hash == digest:
            t.unchanged += 1  # touched, not changed
            self._files.append(
                (FileRecord(key, st.st_mtime, st.st_size, digest, self.params, prev.doc_ids), ())
            )
            return None
        return _Todo(path, key, st.st_mtime, st.st_size, digest, prev)

    def finish(self, todo: _Todo, loaded: Loaded, error: str | None) -> None:
        """Store what a load produced (documents with their chunks), or record why it failed."""
        t = self.tally
        if error is not None:
            self.skip(todo.path, error)
            self.forget(todo.key)
            return
        doc_ids: list[str] = []
        new_docs = 0
        for doc, chunks in loaded:
            if doc.id in doc_ids:
                continue
            doc_ids.append(doc.id)
            if doc.id in self._pending_docs:
                continue
            stored = self.index.manifest.doc_params(doc.id)
            if stored == self.params:
                continue
            if stored is not None:  # same text chunked with other settings: re-chunk
                t.chunks_removed += self.index.delete_document(doc.id)
            self._add_document(doc, chunks)
            new_docs += 1
        prev = todo.prev
        if prev is None:
            t.added += 1
        else:
            t.replaced += 1
        if not new_docs:
            t.duplicates += 1
        record = FileRecord(
            todo.key, todo.mtime, todo.size, todo.digest, self.params, tuple(doc_ids)
        )
        self._files.append((record, prev.doc_ids if prev else ()))
        if self._unflushed >= self.batch_size:
            self.flush()

    def handle_documents(self, docs: Iterable[Document]) -> None:
        """Index Documents made elsewhere (e.g. `from_langchain`), grouped by their source."""
        t = self.tally
        by_source: dict[str, dict[str, None]] = {}  # ordered sets: one source may hold 10k pages
        for doc in docs:
            if not doc.text.strip():
                continue
            key = doc.source or f"document:{doc.id}"
            ids = by_source.setdefault(key, {})
            if doc.id in ids:
                continue
            ids[doc.id] = None
            if doc.id not in self._pending_docs:
                stored = self.index.manifest.doc_params(doc.id)
                if stored != self.params:
                    if stored is not None:
                        t.chunks_removed += self.index.delete_document(doc.id)
                    self._add_document(doc)
            if self._unflushed >= self.batch_size:
                self.flush()
        for key, ids in by_source.items():
            t.files += 1
            prev = self.index.manifest.file(key)
            if prev is None:
                t.added += 1
            elif set(prev.doc_ids) == set(ids) and prev.params == self.params:
                t.unchanged += 1
            else:
                t.replaced += 1
            digest = hashlib.sha256("\x1f".join(ids).encode()).hexdigest()
            record = FileRecord(key, 0.0, 0, digest, self.params, tuple(ids))
            self._files.append((record, prev.doc_ids if prev else ()))

    def _add_document(self, doc: Document, chunks: list[Chunk] | None = None) -> None:
        # Chunks go to the embedder in batches as they are cut: a 50 MB document is ~200k chunks.
        stream = (
            chunks
            if chunks is not None
            else chunk_document(
                doc, chunk_tokens=self.chunk_tokens, overlap_tokens=self.overlap_tokens
            )
        )
        n = 0
        for chunk in stream:
            self._chunks.append(chunk)
            n += 1
            if len(self._chunks) >= self.batch_size:
                self._store_chunks()
        self._unflushed += n
        self._pending_docs.add(doc.id)
        self._docs.append((doc.id, doc.title, doc.source, n, len(doc.text), self.params))
        self.tally.documents_added += 1


def ingest(
    paths: str | Path | Iterable[str | Path],
    *,
    index: str | Path | Index,
    chroma_url: str | None = None,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
    embedder: str = DEFAULT_EMBEDDER,
    progress: bool = False,
    documents: Iterable[Document] | None = None,
    workers: int = 1,
    max_bytes: int = DEFAULT_MAX_BYTES,
    batch_size: int = DEFAULT_BATCH,
    executor: Executor | None = None,
) -> IngestSummary:
    """Load, chunk, embed and index files and folders into the index folder `index`.

    `workers` > 1 loads and chunks files in that many processes (embedding stays in this one).
    `documents` adds Documents loaded elsewhere (for instance `grounded.loaders.from_langchain`
    over any LangChain loader); they are grouped by `Document.source`, whose documents a later
    ingest of the same source replaces. `index` may be an open Index (left open). `executor`
    (`grounded.executors`, e.g. Ray) loads and chunks the files instead of `workers` processes;
    to embed on its workers too, open the Index with a `FanOutEmbedder`.

        >>> s = ingest(["examples/corpus"], index="index", embedder="fast")  # doctest: +SKIP
        >>> s.to_dict()["skipped"]  # doctest: +SKIP
        []
    """
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    roots = [Path(p).expanduser() for p in items]
    if not roots and documents is None:
        raise ConfigError("nothing to ingest: give at least one file or folder")
    if chunk_tokens < 16:
        raise ConfigError(f"chunk_tokens must be at least 16, got {chunk_tokens}")
    if not 0 <= overlap_tokens < chunk_tokens:
        raise ConfigError(f"overlap_tokens must be in [0, chunk_tokens), got {overlap_tokens}")
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    if max_bytes <= 0:
        raise ConfigError(f"max_bytes must be positive, got {max_bytes}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    started = time.perf_counter()
    owned = not isinstance(index, Index)
    idx = (
        index
        if isinstance(index, Index)
        else Index(index, chroma_url=chroma_url, embedder=embedder, create=True)
    )
    bars = _Progress(progress)
    try:
        job = _Ingester(
            idx,
            chunk_tokens=chunk_tokens,
            overlap_tokens=overlap_tokens,
            max_bytes=max_bytes,
            batch_size=batch_size,
            progress=bars,
        )
        seen: set[str] = set()

        def todos() -> Iterator[_Todo]:
            for src in bars.walk(walk(roots)):
                path = src.path
                if src.skipped:  # a folder loop, an unreadable folder
                    job.skip(path, src.skipped)
                    continue
                key = str(path.resolve()) if path.exists() else str(path.absolute())
                if key in seen:  # overlapping paths name the same file twice
                    continue
                seen.add(key)
                todo = job.check(path)
                if todo is not None:
                    yield todo

        ex = executor if executor is not None else _pool(workers)
        if ex is None:
            for todo in todos():
                job.finish(todo, *load_and_chunk(todo.key, chunk_tokens, overlap_tokens, 0))
        else:
            registry = loaders()
            # A bounded window of files in flight keeps memory flat and results in order.
            try:
                for done, result in ordered(
                    ex,
                    load_in_worker,
                    todos(),
                    args=lambda t: (
                        registry,
                        t.key,
                        chunk_tokens,
                        overlap_tokens,
                        WORKER_CHUNK_CHARS,
                    ),
                ):
                    job.finish(done, *result)
            finally:
                if ex is not executor:
                    ex.close()
        if documents is not None:
            job.handle_documents(documents)
        job.flush()
        # Files the manifest knows under the given paths that are no longer there.
        for root in roots:
            if not (root.is_dir() or not root.exists()):
                continue
            base = str(root.resolve()) if root.exists() else str(root.absolute())
            for known in idx.manifest.files_under(base):
                if known not in seen:
                    job.forget(known)
                    job.tally.removed += 1
        n_documents, n_chunks = idx.manifest.counts()
        t = job.tally
        return IngestSummary(
            index=str(idx.chroma_url or idx.path),
            embedder=idx.embedder_name,
            documents=n_documents,
            chunks=n_chunks,
            files=t.files,
            added=t.added,
            unchanged=t.unchanged,
            replaced=t.replaced,
            removed=t.removed,
            duplicates=t.duplicates,
            documents_added=t.documents_added,
            chunks_added=t.chunks_added,
            chunks_removed=t.chunks_removed,
            embedded=job.embedder.misses,
            embeddings_cached=job.embedder.hits,
            seconds=round(time.perf_counter() - started, 3),
            skipped=tuple(t.skipped),
        )
    except Exception as exc:  # noqa: BLE001 - a full disk is said plainly, the rest re-raised
        full = disk_full_error(idx.path, exc, error=IndexStoreError, hint=INGEST_RESUME_HINT)
        if full is None:
            raise
        raise full from exc
    finally:
        bars.close()
        if owned:
            idx.close()


class _Progress:
    """Files walked and chunks embedded, shown on stderr when it is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self._files: Any = None
        self._chunks: Any = None
        if not enabled:
            return
        from tqdm import tqdm

        # disable=None: tqdm shows the bars only when stderr is a terminal.
        self._files = tqdm(desc="ingest", unit="file", file=sys.stderr, disable=None, position=0)
        # Redrawn on every batch, so one huge document visibly moves.
        self._chunks = tqdm(
            desc="embedded",
            unit="chunk",
            file=sys.stderr,
            disable=None,
            position=1,
            mininterval=0,
            miniters=1,
        )

    def walk(self, files: Iterable[SourceFile]) -> Iterator[SourceFile]:
        """The files, counted as they are consumed."""
        for f in files:
            if self._files is not None:
                self._files.set_postfix_str(f.path.name[-30:], refresh=False)
            yield f
            if self._files is not None:
                self._files.update(1)

    def embedded(self, n: int) -> None:
        if self._chunks is not None:
            self._chunks.update(n)

    def close(self) -> None:
        for bar in (self._chunks, self._files):
            if bar is not None:
                bar.close()


def _pool(workers: int) -> LocalExecutor | None:
    """A spawn-context process pool with this process's loader registry, or None for serial."""
    if workers <= 1:
        return None
    registry = loaders()
    if not picklable(registry):  # closures and lambdas cannot travel
        log.warning("a registered loader cannot be sent to worker processes; loading serially")
        return None
    return LocalExecutor(workers=workers, initializer=_init_worker, initargs=(registry,))


_REGISTERED: set[int] = set()


def load_in_worker(
    registry: dict[str, Any],
    path: str,
    chunk_tokens: int,
    overlap_tokens: int,
    max_chars: int | None,
) -> tuple[Loaded, str | None]:
    """`load_and_chunk` in a worker process, with the driver's loaders registered there once."""
    key = hash(tuple(sorted(registry)))
    if key not in _REGISTERED:
        _init_worker(registry)
        _REGISTERED.add(key)
    return load_and_chunk(path, chunk_tokens, overlap_tokens, max_chars)
