"""Index: search, similar, chunks, documents, embedder guard, incremental re-ingest, Chroma server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from grounded.embed import CachedEmbedder, EmbeddingCache
from grounded.errors import ConfigError, IndexStoreError
from grounded.index import check_collection_name, open_index, search
from grounded.ingestion import ingest

GOOD = Path(__file__).parent / "data" / "ingest" / "good"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("index")
    corpus = root / "corpus"
    shutil.copytree(GOOD, corpus)
    summary = ingest([corpus], index=root / "idx", chunk_tokens=64, overlap_tokens=8)
    assert summary.skipped == () and summary.documents == len(list(GOOD.iterdir()))
    return corpus, root / "idx"


def test_search_finds_the_right_document(built: tuple[Path, Path]) -> None:
    _, idx_dir = built
    index = open_index(idx_dir)
    hits = index.search("How tall is the lighthouse at Cape Hatteras?", k=3)
    assert len(hits) == 3
    assert Path(hits[0].chunk.source).name == "notes.txt"
    assert "198 feet" in hits[0].chunk.text
    assert hits[0].score >= hits[1].score >= hits[2].score
    assert -1.0 <= hits[-1].score <= 1.0
    top = search("Which volcano buried Pompeii?", index=idx_dir, k=1)
    assert Path(top[0].chunk.source).name == "volcanoes.docx"


def test_hits_carry_exact_offsets(built: tuple[Path, Path]) -> None:
    corpus, idx_dir = built
    from grounded.loaders import load_file

    index = open_index(idx_dir)
    for hit in index.search("tides and the Moon", k=5):
        (doc,) = load_file(Path(hit.chunk.source))
        assert doc.id == hit.chunk.doc_id
        assert doc.text[hit.chunk.start : hit.chunk.end] == hit.chunk.text


def test_similar_excludes_the_chunk_itself(built: tuple[Path, Path]) -> None:
    index = open_index(built[1])
    chunk = next(iter(index.chunks()))
    hits = index.similar(chunk, k=3)
    assert hits and all(h.chunk.id != chunk.id for h in hits)
    assert len(hits) <= 3


def test_chunks_get_chunks_and_documents_agree(built: tuple[Path, Path]) -> None:
    index = open_index(built[1])
    chunks = list(index.chunks())
    docs = index.documents()
    assert len(chunks) == index.count() == sum(d["chunks"] for d in docs)
    assert {c.doc_id for c in chunks} == {d["doc_id"] for d in docs}
    for d in docs:
        assert d["title"] and d["sources"] and all(Path(s).is_absolute() for s in d["sources"])
    ids = [chunks[2].id, "missing:0-1", chunks[0].id]
    assert [c.id for c in index.get_chunks(ids)] == [chunks[2].id, chunks[0].id]
    md = next(c for c in chunks if c.source.endswith("guide.md") and "230 degrees" in c.text)
    assert md.section[0] == "Bread Baking Guide"
    pdf = [c for c in chunks if c.source.endswith("tides.pdf")]
    assert {c.page for c in pdf} <= {1, 2} and pdf[0].page == 1


def test_embedder_name_is_stored_and_mismatch_refused(built: tuple[Path, Path]) -> None:
    index = open_index(built[1])
    assert index.embedder_name == "minilm" == index.embedder.name
    assert index._collection.metadata["embedder"] == "minilm"
    with pytest.raises(IndexStoreError, match="built with embedder 'minilm', not 'fast'"):
        open_index(built[1], embedder="fast")
    with pytest.raises(IndexStoreError, match="built with embedder"):
        ingest([GOOD / "notes.txt"], index=built[1], embedder="fast")


def test_missing_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IndexStoreError, match="no index at"):
        open_index(tmp_path / "nothing")


@pytest.mark.parametrize("name", ["ab", "-abc", "abc-", "a b c", "ab/cd", "x" * 513])
def test_bad_collection_names(name: str) -> None:
    with pytest.raises(ConfigError):
        check_collection_name(name)


def test_good_collection_names() -> None:
    assert check_collection_name("abc") == "abc"
    assert check_collection_name("grounded-my_docs.v2") == "grounded-my_docs.v2"


def test_reingest_change_delete_duplicate(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("notes.txt", "guide.md"):
        shutil.copy(GOOD / name, corpus / name)
    idx = tmp_path / "idx"
    first = ingest([corpus], index=idx, chunk_tokens=48, overlap_tokens=0)
    assert (first.added, first.documents, first.skipped) == (2, 2, ())
    n_chunks = first.chunks

    again = ingest([corpus], index=idx, chunk_tokens=48, overlap_tokens=0)
    assert (again.added, again.unchanged, again.chunks_added, again.chunks) == (0, 2, 0, n_chunks)

    # Same bytes, new mtime: hashed, found unchanged.
    os.utime(corpus / "notes.txt", (time.time() + 5, time.time() + 5))
    touched = ingest([corpus], index=idx, chunk_tokens=48, overlap_tokens=0)
    assert (touched.unchanged, touched.chunks_added) == (2, 0)

    # A changed file replaces its chunks; its unchanged chunks come from the embedding cache.
    text = (corpus / "guide.md").read_text()
    (corpus / "guide.md").write_text(text.replace("35 minutes", "40 minutes"))
    changed = ingest([corpus], index=idx, chunk_tokens=48, overlap_tokens=0)
    assert (changed.replaced, changed.documents) == (1, 2)
    assert changed.chunks_removed > 0 and changed.chunks == n_chunks
    assert changed.embeddings_cached > 0 and changed.embedded < changed.chunks_added
    index = open_index(idx)
    texts = " ".join(c.text for c in index.chunks())
    assert "40 minutes" in texts and "35 minutes" not in texts

    # An identical copy under another name is stored once, with both paths.
    shutil.copy(corpus / "notes.txt", corpus / "notes-copy.txt")
    dup = ingest([corpus], index=idx, chunk_tokens=48, overlap_tokens=0)
    assert (dup.added, dup.duplicates, dup.documents, dup.chunks_added) == (1, 1, 2, 0)
    notes = next(d for d in open_index(idx).documents() if d["title"] == "FIELD NOTES")
    assert sorted(Path(s).name for s in notes["sources"]) == ["notes-copy.txt", "notes.txt"]

    # Deleting one copy keeps the document; deleting both removes it.
    (corpus / "notes.txt").unlink()
    gone1 = ingest([corpus], index=idx, chunk_tokens=48, overlap_tokens=0)
    assert (gone1.removed, gone1.documents, gone1.chunks_removed) == (1, 2, 0)
    kept = [c for c in open_index(idx).chunks() if "Hatteras" in c.text]
    assert kept and {Path(c.source).name for c in kept} == {"notes-copy.txt"}
    (corpus / "notes-copy.txt").unlink()
    gone2 = ingest([corpus], index=idx, chunk_tokens=48, overlap_tokens=0)
    assert (gone2.removed, gone2.documents) == (1, 1)
    assert all("Hatteras" not in c.text for c in open_index(idx).chunks())

    # Files outside the folders being ingested are left alone.
    other = tmp_path / "other.txt"
    shutil.copy(GOOD / "notes.txt", other)
    ingest([other], index=idx, chunk_tokens=48, overlap_tokens=0)
    again = ingest([corpus], index=idx, chunk_tokens=48, overlap_tokens=0)
    assert (again.removed, again.documents) == (0, 2)

    # New chunking settings re-chunk unchanged files.
    rechunked = ingest([corpus], index=idx, chunk_tokens=200, overlap_tokens=0)
    assert rechunked.replaced == 1 and rechunked.chunks_removed > 0


def test_embedding_cache_skips_known_texts(tmp_path: Path) -> None:
    class Counting:
        name, dim = "counting", 3

        def __init__(self) -> None:
            self.seen: list[str] = []

        def embed(self, texts: list[str]) -> np.ndarray:
            self.seen.extend(texts)
            return np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)

    inner = Counting()
    cached = CachedEmbedder(inner, EmbeddingCache(tmp_path / "c.sqlite"))
    a = cached.embed(["one", "three", "one"])
    b = cached.embed(["three", "four"])
    assert inner.seen == ["one", "three", "four"]
    assert np.allclose(a[1], b[0]) and np.allclose(a[0], a[2])
    assert (cached.hits, cached.misses) == (2, 3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_chroma_server_on_loopback(tmp_path: Path) -> None:
    chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    if not Path(chroma).exists():
        pytest.skip("the `chroma` CLI is not installed")
    port = _free_port()
    proc = subprocess.Popen(
        [
            chroma,
            "run",
            "--path",
            str(tmp_path / "server"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    pytest.fail("chroma server did not start")
                time.sleep(0.3)
        summary = ingest(
            [GOOD / "notes.txt", GOOD / "page.html"], index=tmp_path / "idx", chroma_url=url
        )
        assert summary.documents == 2 and summary.skipped == ()
        assert not (tmp_path / "idx" / "chroma").exists()  # vectors live on the server
        index = open_index(tmp_path / "idx", chroma_url=url)
        assert index.collection_name.startswith("grounded-idx-")
        hit = index.search("Which river flows to the North Sea?", k=1)[0]
        assert Path(hit.chunk.source).name == "page.html"
        again = ingest([GOOD / "notes.txt"], index=tmp_path / "idx", chroma_url=url)
        assert again.unchanged == 1 and again.chunks_added == 0
        # The folder remembers its server.
        remembered = open_index(tmp_path / "idx")
        assert remembered.chroma_url == url and remembered.count() == index.count()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_unreachable_chroma_server_is_a_clear_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(IndexStoreError, match="cannot reach the Chroma server"):
        ingest([GOOD / "notes.txt"], index=tmp_path / "idx", chroma_url=url)


def test_ingest_langchain_documents(tmp_path: Path) -> None:
    from langchain_core.documents import Document as LCDocument

    from grounded.loaders import from_langchain, to_langchain

    pages = [
        "The Danube flows through ten countries, more than any other river in the world.",
        "Vienna, Budapest and Belgrade are capitals on the Danube.",
    ]
    lc = [
        LCDocument(page_content=p, metadata={"source": "danube.pdf", "page": i})
        for i, p in enumerate(pages)
    ]
    idx = tmp_path / "idx"
    first = ingest([], index=idx, documents=from_langchain(lc))
    assert (first.added, first.documents, first.skipped) == (1, 2, ())
    index = open_index(idx)
    hit = index.search("Which capitals lie on the Danube?", k=1)[0]
    assert hit.chunk.source == "danube.pdf" and hit.chunk.page == 2
    (doc,) = [d for d in index.documents() if d["doc_id"] == hit.chunk.doc_id]
    assert doc["sources"] == ["danube.pdf"]
    back = to_langchain([hit.chunk])[0]
    assert back.page_content == hit.chunk.text and back.metadata["page"] == 2

    again = ingest([], index=idx, documents=from_langchain(lc))
    assert (again.unchanged, again.chunks_added) == (1, 0)
    lc[1] = LCDocument(
        page_content="Vienna and Budapest are capitals on the Danube.", metadata=lc[1].metadata
    )
    changed = ingest([], index=idx, documents=from_langchain(lc))
    assert (changed.replaced, changed.documents, changed.documents_added) == (1, 2, 1)
    assert changed.chunks_removed == 1
