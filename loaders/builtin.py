"""Built-in loaders: text, Markdown, HTML and DOCX through unstructured, PDF through pdfminer.six.

unstructured's `partition_pdf` imports `unstructured_inference` at module import even for
`strategy="fast"`, and that package pulls a CUDA build of torch; pdfminer.six (which the fast
strategy uses underneath) gives the same text boxes and page numbers without it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from grounded import offline
from grounded.errors import LoaderError
from grounded.loaders import register_loader
from grounded.types import Block, Document

# Sniff this many bytes to tell text from binary junk.
_SNIFF = 8192


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode file bytes to text: BOMs, then UTF-8, then charset detection; (text, encoding).

    Raises LoaderError for empty input and for binary content.
    """
    if not data.strip():
        raise LoaderError("empty file")
    for bom, enc in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError:
                break
    if _looks_binary(data[:_SNIFF]):
        raise LoaderError("binary content, not text")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is not None and best.encoding:
        return str(best), best.encoding
    # Every byte decodes in cp1252/latin-1; only reached when detection found nothing plausible.
    return data.decode("latin-1"), "latin-1"


def _looks_binary(head: bytes) -> bool:
    if b"\x00" in head:
        return True
    # Control bytes other than tab/newline/carriage return/form feed/escape are rare in text.
    ctrl = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return ctrl > max(1, len(head) // 100)


def read_text(path: Path) -> tuple[str, str]:
    return decode_text(path.read_bytes())


# languages=[""] turns off unstructured's per-document langdetect pass (~60 ms a document,
# more than the partitioning itself); grounded does not use its result.
def _partition_ready() -> None:
    os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")  # it prints an ad on stdout
    offline.configure()
    from grounded.loaders.nlp import use_nlp

    use_nlp()  # offline spaCy model for unstructured; light (fast) unless GROUNDED_NLP=full


def elements_to_document(
    elements: Iterable[Any], *, source: str, title: str = "", metadata: dict[str, Any] | None = None
) -> Document:
    """Join unstructured elements into one text with a Block per element (section path, page)."""
    parts: list[str] = []
    blocks: list[Block] = []
    stack: list[tuple[int, str]] = []  # (depth, heading) of the open sections
    pos = 0
    first_title = ""
    pages: set[int] = set()
    for el in elements:
        text = (getattr(el, "text", "") or "").strip()
        if not text:
            continue
        kind = getattr(el, "category", "text") or "text"
        meta = getattr(el, "metadata", None)
        page = getattr(meta, "page_number", None)
        if kind == "Title":
            depth = getattr(meta, "category_depth", None) or 0
            while stack and stack[-1][0] >= depth:
                stack.pop()
            stack.append((depth, text))
            first_title = first_title or text
        if parts:
            pos += 2
        blocks.append(Block(pos, pos + len(text), kind, tuple(h for _, h in stack), page))
        parts.append(text)
        pos += len(text)
        if page is not None:
            pages.add(page)
    text = "\n\n".join(parts)
    meta_out = dict(metadata or {})
    if pages:
        meta_out["pages"] = max(pages)
    return Document.from_text(
        text,
        source=source,
        title=title or first_title or Path(source).stem,
        blocks=tuple(blocks),
        metadata=meta_out,
    )


def _html_title(html: str) -> str:
    import re

    m = re.search(r"<title[^>]*>(.*?)</title>", html[:20000], re.I | re.S)
    if not m:
        return ""
    import html as htmllib

    return " ".join(htmllib.unescape(m.group(1)).split())


@register_loader([".txt", ".text", ".log", ".rst"])
def load_text(path: Path) -> Iterator[Document]:
    """Plain text through unstructured's `partition_text` (titles, paragraphs, list items)."""
    text, enc = read_text(path)
    _partition_ready()
    from unstructured.partition.text import partition_text

    elements = partition_text(text=text, languages=[""])
    yield elements_to_document(
        elements, source=str(path), metadata={"filetype": "text", "encoding": enc}
    )


@register_loader([".md", ".markdown"])
def load_markdown(path: Path) -> Iterator[Document]:
    """Markdown through unstructured's `partition_md` (headings give the section path)."""
    text, enc = read_text(path)
    _partition_ready()
    from unstructured.partition.md import partition_md

    elements = partition_md(text=text, languages=[""])
    yield elements_to_document(
        elements, source=str(path), metadata={"filetype": "markdown", "encoding": enc}
    )


@register_loader([".html", ".htm", ".xhtml"])
def load_html(path: Path) -> Iterator[Document]:
    """HTML through unstructured's `partition_html`; the <title> becomes the document title."""
    text, enc = read_text(path)
    _partition_ready()
    from unstructured.partition.html import partition_html

    elements = partition_html(text=text, languages=[""])
    yield elements_to_document(
        elements,
        source=str(path),
        title=_html_title(text),
        metadata={"filetype": "html", "encoding": enc},
    )


@register_loader([".docx"])
def load_docx(path: Path) -> Iterator[Document]:
    """DOCX through unstructured's `partition_docx` (heading styles, page breaks)."""
    if path.stat().st_size == 0:
        raise LoaderError("empty file")
    _partition_ready()
    import zipfile

    if not zipfile.is_zipfile(path):
        raise LoaderError("not a valid DOCX file (not a zip archive)")
    from unstructured.partition.docx import partition_docx

    try:
        elements = partition_docx(filename=str(path), languages=[""])
    except (KeyError, zipfile.BadZipFile, ValueError) as exc:
        raise LoaderError(f"corrupt DOCX: {type(exc).__name__}: {exc}") from exc
    title = ""
    try:
        import docx

        title = docx.Document(str(path)).core_properties.title or ""
    except Exception:  # noqa: BLE001 - the title is a nicety
        title = ""
    yield elements_to_document(
        elements, source=str(path), title=title, metadata={"filetype": "docx"}
    )


@register_loader([".pdf"])
def load_pdf(path: Path) -> Iterator[Document]:
    """PDF text boxes with page numbers through pdfminer.six (no OCR, no layout model)."""
    with open(path, "rb") as fh:
        head = fh.read(1024)
    if not head:
        raise LoaderError("empty file")
    if b"%PDF-" not in head:
        raise LoaderError("not a PDF file (no %PDF header)")
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTTextContainer
    from pdfminer.pdfparser import PDFSyntaxError
    from pdfminer.psexceptions import PSException

    paras: list[tuple[int, str, float]] = []  # page, text, line height
    page_count = 0
    try:
        for page_no, page in enumerate(extract_pages(str(path), laparams=LAParams()), start=1):
            page_count = page_no
            paras.extend((page_no, text, h) for text, h in _pdf_paragraphs(page, LTTextContainer))
    except (PDFSyntaxError, PSException) as exc:
        raise LoaderError(f"corrupt PDF: {type(exc).__name__}: {exc}") from exc
    if not any(text.strip() for _, text, _ in paras):
        raise LoaderError("no text extracted (scanned PDF? OCR is not supported)")
    yield elements_to_document(
        _pdf_elements(paras),
        source=str(path),
        title=_pdf_title(path),
        metadata={"filetype": "pdf", "pages": page_count},
    )


def _pdf_elements(paras: list[tuple[int, str, float]]) -> Iterator[Any]:
    """Paragraphs as unstructured-like elements; short lines in a larger font become titles."""
    from types import SimpleNamespace

    weighted = sorted((h, len(t)) for _, t, h in paras)
    total, acc, body = sum(n for _, n in weighted), 0, 0.0
    for h, n in weighted:  # the line height that covers the median character
        acc += n
        if acc * 2 >= total:
            body = h
            break
    sizes = sorted(
        {round(h * 2) / 2 for _, t, h in paras if _is_pdf_heading(t, h, body)}, reverse=True
    )
    for page, text, h in paras:
        heading = _is_pdf_heading(text, h, body)
        depth = sizes.index(round(h * 2) / 2) if heading else None
        yield SimpleNamespace(
            text=text,
            category="Title" if heading else "NarrativeText",
            metadata=SimpleNamespace(page_number=page, category_depth=depth),
        )


def _is_pdf_heading(text: str, height: float, body: float) -> bool:
    return body > 0 and height >= 1.15 * body and len(text) <= 150 and not text.endswith(".")


def _pdf_title(path: Path) -> str:
    try:
        from pypdf import PdfReader

        info = PdfReader(str(path)).metadata
        return str(info.title) if info and info.title else ""
    except Exception:  # noqa: BLE001 - the title is a nicety
        return ""


def _pdf_paragraphs(page: Any, container: type) -> Iterator[tuple[str, float]]:
    """Text of a page's boxes, merging boxes that are consecutive lines of one paragraph.

    pdfminer's default layout often returns each line as its own box when the line spacing is
    loose; a box directly below the previous one (gap under one line height, same font size,
    overlapping columns) continues its paragraph.
    """
    current: list[str] = []
    prev: tuple[float, float, float, float] | None = None  # x0, x1, y0, line height
    for item in page:
        if not isinstance(item, container):
            continue
        box: Any = item
        text = " ".join(box.get_text().split())  # pdf lines are layout, not sentences
        if not text:
            continue
        heights = sorted(getattr(line, "height", 0.0) for line in box) or [box.height]
        line_h = heights[len(heights) // 2] or box.height
        if prev is not None and current:
            x0, x1, y0, h = prev
            gap = y0 - box.y1
            same_size = abs(line_h - h) <= 0.2 * max(line_h, h)
            overlaps = box.x0 < x1 and box.x1 > x0
            if same_size and overlaps and -0.5 * h < gap < 0.8 * h:
                current.append(text)
                prev = (min(x0, box.x0), max(x1, box.x1), box.y0, line_h)
                continue
        if current and prev is not None:
            yield " ".join(current), prev[3]
        current = [text]
        prev = (box.x0, box.x1, box.y0, line_h)
    if current and prev is not None:
        yield " ".join(current), prev[3]
