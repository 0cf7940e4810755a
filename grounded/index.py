"""The chunk index: Chroma (embedded in a folder, or a Chroma server) plus a small SQLite manifest.

    >>> import grounded
    >>> index = grounded.open_index("index")  # doctest: +SKIP
    >>> index.search("When was the Gettysburg Address delivered?", k=3)  # doctest: +SKIP

Embeddings are always computed by grounded (never by Chroma's default embedding function, which
downloads a model) and the embedder's name is stored with the collection: searching with a
different embedder is refused, since its vectors live in another space.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from grounded import offline
from grounded.embed import DEFAULT_EMBEDDER, CachedEmbedder, Embedder, EmbeddingCache, get_embedder
from grounded.errors import ConfigError, IndexStoreError
from grounded.rundir import atomic_write_json
from grounded.store import SQLiteStore
from grounded.types import Chunk, Hit

INDEX_FORMAT = 1
INDEX_FILE = "index.json"
MANIFEST_FILE = "manifest.sqlite"
CHROMA_DIR = "chroma"
INGEST_RESUME_HINT = (
    "free some space and rerun the same command; files already ingested are skipped"
)
EMBED_CACHE_FILE = "embeddings.sqlite"
DEFAULT_COLLECTION = "grounded"
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$")
_PAGE = 1000  # rows per Chroma `get` page


def check_collection_name(name: str) -> str:
    """Chroma's rule: 3-512 characters of [a-zA-Z0-9._-], starting and ending alphanumeric."""
    if not _NAME_RE.match(name) or ".." in name:
        raise ConfigError(
            f"invalid collection name {name!r}",
            hint="use 3-512 characters [a-zA-Z0-9._-], starting and ending with a letter or digit",
        )
    return name


def _server_collection_name(path: Path) -> str:
    # One server can hold many indexes: name the collection after the index folder, made unique.
    stem = re.sub(r"[^a-zA-Z0-9._-]+", "-", path.name).strip("._-")[:40] or "index"
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
    return check_collection_name(f"grounded-{stem}-{digest}")


@dataclass(frozen=True, slots=True)
class FileRecord:
    path: str
    mtime: float
    size: int
    hash: str
    params: str
    doc_ids: tuple[str, ...]


class Manifest:
    """source path -> doc ids, mtime, size, content hash; doc id -> title, chunk count."""

    def __init__(self, path: Path) -> None:
        self._db = SQLiteStore(
            path, schema=_MANIFEST_SCHEMA, what="index manifest", error=IndexStoreError
        )

    def close(self) -> None:
        self._db.close()

    def file(self, path: str) -> FileRecord | None:
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT path, mtime, size, hash, params FROM files WHERE path = ?", (path,)
            ).fetchone()
            if row is None:
                return None
            ids = tuple(
                r[0] for r in db.execute("SELECT doc_id FROM sources WHERE path = ?", (path,))
            )
        return FileRecord(row[0], row[1], row[2], row[3], row[4], doc_ids=ids)

    def files_under(self, root: str) -> list[str]:
        prefix = root.rstrip("/") + "/"
        rows = self._db.read(
            "SELECT path FROM files WHERE path = ? OR substr(path, 1, ?) = ?",
            (root, len(prefix), prefix),
        )
        return [r[0] for r in rows]

    def put_file(self, rec: FileRecord) -> None:
        with self._db.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                (rec.path, rec.mtime, rec.size, rec.hash, rec.params),
            )
            db.execute("DELETE FROM sources WHERE path = ?", (rec.path,))
            db.executemany(
                "INSERT OR IGNORE INTO sources VALUES (?, ?)", [(rec.path, d) for d in rec.doc_ids]
            )

    def remove_file(self, path: str) -> None:
        with self._db.transaction() as db:
            db.execute("DELETE FROM files WHERE path = ?", (path,))
            db.execute("DELETE FROM sources WHERE path = ?", (path,))

    def doc_params(self, doc_id: str) -> str | None:
        row = self._db.read_one("SELECT params FROM docs WHERE doc_id = ?", (doc_id,))
        return row[0] if row else None

    def put_docs(self, rows: Iterable[tuple[str, str, str, int, int, str]]) -> None:
        self._db.write_many("INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?, ?, ?)", list(rows))

    def remove_doc(self, doc_id: str) -> None:
        self._db.write("DELETE FROM docs WHERE doc_id = ?", (doc_id,))

    def doc_source(self, doc_id: str) -> str | None:
        row = self._db.read_one("SELECT source FROM docs WHERE doc_id = ?", (doc_id,))
        return row[0] if row else None

    def sources_of(self, doc_id: str) -> list[str]:
        rows = self._db.read("SELECT path FROM sources WHERE doc_id = ? ORDER BY path", (doc_id,))
        return [r[0] for r in rows]

    def set_doc_source(self, doc_id: str, source: str) -> None:
        self._db.write("UPDATE docs SET source = ? WHERE doc_id = ?", (source, doc_id))

    def documents(self) -> list[dict[str, Any]]:
        with self._db.transaction() as db:  # one snapshot of both tables
            docs = db.execute(
                "SELECT doc_id, title, source, chunks, chars FROM docs ORDER BY source, doc_id"
            ).fetchall()
            sources: dict[str, list[str]] = {}
            for path, doc_id in db.execute("SELECT path, doc_id FROM sources ORDER BY path"):
                sources.setdefault(doc_id, []).append(path)
        return [
            {
                "doc_id": d,
                "title": title,
                "sources": sources.get(d) or ([src] if src else []),
                "chunks": n,
                "chars": chars,
            }
            for d, title, src, n, chars in docs
        ]

    def counts(self) -> tuple[int, int]:
        row = self._db.read_one("SELECT COUNT(*), COALESCE(SUM(chunks), 0) FROM docs")
        return (int(row[0]), int(row[1])) if row else (0, 0)


_MANIFEST_SCHEMA = """
    CREATE TABLE IF NOT EXISTS files (
        path TEXT PRIMARY KEY, mtime REAL, size INTEGER, hash TEXT, params TEXT);
    CREATE TABLE IF NOT EXISTS sources (
        path TEXT, doc_id TEXT, PRIMARY KEY (path, doc_id));
    CREATE INDEX IF NOT EXISTS sources_doc ON sources (doc_id);
    CREATE TABLE IF NOT EXISTS docs (
        doc_id TEXT PRIMARY KEY, title TEXT, source TEXT, chunks INTEGER,
        chars INTEGER, params TEXT);
"""


def _chunk_metadata(c: Chunk) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "doc_id": c.doc_id,
        "start": c.start,
        "end": c.end,
        "source": c.source,
        "title": c.title,
        "section": json.dumps(list(c.section), ensure_ascii=False),
        "tokens": c.tokens,
    }
    if c.page is not None:
        meta["page"] = c.page
    return meta


def _chunk_from(id_: str, text: str, meta: dict[str, Any]) -> Chunk:
    try:
        section = tuple(json.loads(meta.get("section") or "[]"))
    except (TypeError, ValueError):
        section = ()
    page = meta.get("page")
    return Chunk(
        id=id_,
        doc_id=str(meta.get("doc_id", "")),
        text=text,
        start=int(meta.get("start", 0)),
        end=int(meta.get("end", 0)),
        source=str(meta.get("source", "")),
        title=str(meta.get("title", "")),
        section=section,
        page=int(page) if page is not None else None,
        tokens=int(meta.get("tokens", 0)),
    )


def _connect(path: Path, chroma_url: str | None) -> Any:
    offline.configure()
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if chroma_url:
        url = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(
                f"invalid Chroma URL {chroma_url!r}", hint="e.g. http://127.0.0.1:8000"
            )
        try:
            client = chromadb.HttpClient(
                host=url.hostname,
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=settings,
            )
            client.heartbeat()
        except Exception as exc:  # noqa: BLE001 - connection errors come in many types
            raise IndexStoreError(
                f"cannot reach the Chroma server at {chroma_url}: {exc}",
                hint="start one with: chroma run --path DIR --port PORT",
            ) from exc
        return client
    try:
        return chromadb.PersistentClient(path=str(path / CHROMA_DIR), settings=settings)
    except Exception as exc:  # noqa: BLE001
        from grounded.rundir import disk_full_error

        full = disk_full_error(path, exc, hint=INGEST_RESUME_HINT)
        raise IndexStoreError(
            f"cannot open the Chroma store in {path / CHROMA_DIR}: {full or exc}",
            hint=full.hint if full else "",
        ) from exc


class Index:
    """A folder holding the manifest (and, without a server, the Chroma store) of one corpus."""

    def __init__(
        self,
        path: str | Path,
        *,
        chroma_url: str | None = None,
        embedder: str | Embedder | None = None,
        collection: str | None = None,
        create: bool = False,
    ) -> None:
        self.path = Path(path).expanduser()
        meta_file = self.path / INDEX_FILE
        if meta_file.is_file():
            try:
                self.meta: dict[str, Any] = json.loads(meta_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise IndexStoreError(f"unreadable index metadata {meta_file}: {exc}") from exc
        elif create:
            self.meta = {}
        else:
            raise IndexStoreError(
                f"no index at {self.path}",
                hint=f"build one with: grounded ingest PATH --index {self.path}",
            )
        # An index built on a Chroma server remembers its URL; an explicit one wins.
        self.chroma_url = chroma_url or self.meta.get("chroma_url") or None
        chroma_url = self.chroma_url
        want = embedder if isinstance(embedder, str) or embedder is None else embedder.name
        stored = self.meta.get("embedder")
        if stored and want and want != stored:
            raise IndexStoreError(
                f"index {self.path} was built with embedder {stored!r}, not {want!r}; vectors from "
                "different embedders cannot be compared",
                hint=f"use --embedder {stored}, or ingest into a new index folder",
            )
        self.embedder_name: str = stored or want or DEFAULT_EMBEDDER
        self._embedder: Embedder | None = (
            embedder if embedder is not None and not isinstance(embedder, str) else None
        )
        name = collection or self.meta.get("collection")
        if not name:
            name = _server_collection_name(self.path) if chroma_url else DEFAULT_COLLECTION
        self.collection_name = check_collection_name(name)
        if create:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise IndexStoreError(f"cannot create index folder {self.path}: {exc}") from exc
        self._client = _connect(self.path, chroma_url)
        self._collection = self._open_collection(create)
        self.manifest = Manifest(self.path / MANIFEST_FILE)
        self._cache: EmbeddingCache | None = None
        if create and not meta_file.is_file():
            self.meta = {
                "format": INDEX_FORMAT,
                "embedder": self.embedder_name,
                "collection": self.collection_name,
                "chroma_url": chroma_url or "",
            }
            atomic_write_json(meta_file, self.meta)

    def _open_collection(self, create: bool) -> Any:
        try:
            if create:
                col = self._client.get_or_create_collection(
                    self.collection_name,
                    metadata={"embedder": self.embedder_name, "grounded_format": INDEX_FORMAT},
                    configuration={"hnsw": {"space": "cosine"}},
                    embedding_function=None,
                )
            else:
                col = self._client.get_collection(self.collection_name, embedding_function=None)
        except Exception as exc:  # noqa: BLE001 - chromadb raises several types for a missing collection
            raise IndexStoreError(
                f"cannot open Chroma collection {self.collection_name!r}"
                + (f" on {self.chroma_url}" if self.chroma_url else f" in {self.path}")
                + f": {exc}"
            ) from exc
        stored = (col.metadata or {}).get("embedder")
        if stored and stored != self.embedder_name:
            raise IndexStoreError(
                f"Chroma collection {self.collection_name!r} holds vectors from embedder {stored!r}, "
                f"not {self.embedder_name!r}",
                hint="use a different index folder or collection",
            )
        return col

    # --- reading -------------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        """The Embedder this index was built with (loaded on first use)."""
        if self._embedder is None:
            self._embedder = get_embedder(self.embedder_name)
        return self._embedder

    def cached_embedder(self) -> CachedEmbedder:
        """The embedder behind this index's embedding cache (keyed by embedder and text hash)."""
        if self._cache is None:
            self._cache = EmbeddingCache(self.path / EMBED_CACHE_FILE)
        return CachedEmbedder(self.embedder, self._cache)

    def count(self) -> int:
        """Number of chunks stored."""
        return int(self._collection.count())

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The k chunks closest to `query` (cosine similarity, higher is closer)."""
        if not query.strip():
            raise ConfigError("empty search query")
        vec = self.embedder.embed([query])
        return self._query(vec[0], k)

    def similar(self, chunk: Chunk, k: int = 5) -> list[Hit]:
        """The k chunks closest to `chunk`, excluding the chunk itself."""
        got = self._collection.get(ids=[chunk.id], include=["embeddings"])
        embs = got.get("embeddings")
        if embs is not None and len(embs):
            vec = np.asarray(embs[0], dtype=np.float32)
        else:
            vec = self.embedder.embed([chunk.text])[0]
        return [h for h in self._query(vec, k + 1) if h.chunk.id != chunk.id][:k]

    def _query(self, vec: np.ndarray, k: int) -> list[Hit]:
        if k <= 0:
            return []
        n = self.count()
        if n == 0:
            return []
        res = self._collection.query(
            query_embeddings=[np.asarray(vec, dtype=np.float32).tolist()],
            n_results=min(k, n),
            include=["documents", "metadatas", "distances"],
        )
        ids = res["ids"][0]
        docs = (res.get("documents") or [[]])[0]
        metas = (res.get("metadatas") or [[]])[0]
        dists = (res.get("distances") or [[]])[0]
        return [
            Hit(chunk=_chunk_from(i, d or "", dict(m or {})), score=float(1.0 - dist))
            for i, d, m, dist in zip(ids, docs, metas, dists, strict=False)
        ]

    def chunks(self) -> Iterator[Chunk]:
        """Every chunk in the index, in pages (ordered by source, then offset)."""
        for doc in self.manifest.documents():
            got = self._collection.get(
                where={"doc_id": doc["doc_id"]}, include=["documents", "metadatas"]
            )
            found = [
                _chunk_from(i, d or "", dict(m or {}))
                for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=False)
            ]
            yield from sorted(found, key=lambda c: (c.start, c.end))

    def get_chunks(self, ids: Sequence[str]) -> list[Chunk]:
        """Chunks by id, in the order asked; unknown ids are left out."""
        ids = list(dict.fromkeys(ids))
        by_id: dict[str, Chunk] = {}
        for i in range(0, len(ids), _PAGE):
            got = self._collection.get(ids=ids[i : i + _PAGE], include=["documents", "metadatas"])
            for cid, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=False):
                by_id[cid] = _chunk_from(cid, d or "", dict(m or {}))
        return [by_id[i] for i in ids if i in by_id]

    def documents(self) -> list[dict[str, Any]]:
        """One dict per stored document: doc_id, sources (paths), title, chunks (count), chars."""
        return self.manifest.documents()

    # --- writing (used by grounded.ingestion) --------------------------------------------------

    def add(self, chunks: Sequence[Chunk], embeddings: np.ndarray) -> None:
        """Upsert chunks with their precomputed embeddings."""
        if not chunks:
            return
        step = max(1, min(_max_batch(self._client), 1000))
        for i in range(0, len(chunks), step):
            part = chunks[i : i + step]
            try:
                self._collection.upsert(
                    ids=[c.id for c in part],
                    embeddings=np.asarray(embeddings[i : i + step], dtype=np.float32),
                    documents=[c.text for c in part],
                    metadatas=[_chunk_metadata(c) for c in part],
                )
            except Exception as exc:  # noqa: BLE001
                raise self._write_error(exc) from exc

    def _write_error(self, exc: Exception) -> IndexStoreError:
        """A failed Chroma write; a full disk is named (Chroma may say only "Error in compaction")."""
        from grounded.rundir import disk_full_error

        full = None if self.chroma_url else disk_full_error(self.path, exc, hint=INGEST_RESUME_HINT)
        return IndexStoreError(
            f"writing to Chroma failed: {full or exc}", hint=full.hint if full else ""
        )

    def delete_document(self, doc_id: str) -> int:
        """Remove a document's chunks and its manifest row; returns the chunk count removed."""
        got = self._collection.get(where={"doc_id": doc_id}, include=[])
        ids = list(got["ids"])
        if ids:
            self._collection.delete(ids=ids)
        self.manifest.remove_doc(doc_id)
        return len(ids)

    def set_source(self, doc_id: str, source: str) -> None:
        """Point a document's chunks at another of its source paths (the first one went away)."""
        got = self._collection.get(where={"doc_id": doc_id}, include=["metadatas"])
        ids = list(got["ids"])
        if ids:
            metas = [{**dict(m or {}), "source": source} for m in got["metadatas"]]
            self._collection.update(ids=ids, metadatas=metas)
        self.manifest.set_doc_source(doc_id, source)

    def close(self) -> None:
        self.manifest.close()
        if self._cache is not None:
            self._cache.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.chroma_url or str(self.path)
        return f"Index({where!r}, collection={self.collection_name!r}, embedder={self.embedder_name!r})"


def _max_batch(client: Any) -> int:
    try:
        return int(client.get_max_batch_size())
    except Exception:  # noqa: BLE001 - older clients
        return 1000


def open_index(
    path: str | Path,
    *,
    chroma_url: str | None = None,
    embedder: str | Embedder | None = None,
    collection: str | None = None,
) -> Index:
    """Open an index built by `grounded ingest` (its folder; `chroma_url` for a Chroma server)."""
    return Index(path, chroma_url=chroma_url, embedder=embedder, collection=collection)


def search(
    query: str, *, index: str | Path | Index, k: int = 5, chroma_url: str | None = None
) -> list[Hit]:
    """Search an index folder (or an open Index) for the k chunks closest to `query`."""
    if isinstance(index, Index):
        return index.search(query, k)
    with open_index(index, chroma_url=chroma_url) as idx:
        return idx.search(query, k)
