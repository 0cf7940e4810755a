"""Regenerate examples/corpus: public-domain US documents and Wikipedia paragraphs (CC BY-SA 4.0,
taken from the SQuAD v1.1 dev set), in .txt, .md, .html, .pdf and .docx.

    python examples/make_corpus.py [--squad ../shared/bench/squad/dev-v1.1-part-a.json]

Needs: fpdf2 (PDF) and python-docx (DOCX). The generated files are committed, so users never
need to run this; sources and licences are listed in examples/corpus/LICENSES.md.
"""

from __future__ import annotations

import argparse
import html
import json
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "corpus"
DEFAULT_SQUAD = HERE.parent.parent / "shared" / "bench" / "squad" / "dev-v1.1-part-a.json"

# The Bliss copy of the address, as engraved on the Lincoln Memorial (public domain).
GETTYSBURG = """THE GETTYSBURG ADDRESS

Abraham Lincoln delivered this address on November 19, 1863, at the dedication of the Soldiers' National Cemetery in Gettysburg, Pennsylvania, four and a half months after the Union armies defeated the Confederate forces at the Battle of Gettysburg.

Four score and seven years ago our fathers brought forth on this continent, a new nation, conceived in Liberty, and dedicated to the proposition that all men are created equal.

Now we are engaged in a great civil war, testing whether that nation, or any nation so conceived and so dedicated, can long endure. We are met on a great battle-field of that war. We have come to dedicate a portion of that field, as a final resting place for those who here gave their lives that that nation might live. It is altogether fitting and proper that we should do this.

But, in a larger sense, we can not dedicate -- we can not consecrate -- we can not hallow -- this ground. The brave men, living and dead, who struggled here, have consecrated it, far above our poor power to add or detract. The world will little note, nor long remember what we say here, but it can never forget what they did here. It is for us the living, rather, to be dedicated here to the unfinished work which they who fought here have thus far so nobly advanced. It is rather for us to be here dedicated to the great task remaining before us -- that from these honored dead we take increased devotion to that cause for which they gave the last full measure of devotion -- that we here highly resolve that these dead shall not have died in vain -- that this nation, under God, shall have a new birth of freedom -- and that government of the people, by the people, for the people, shall not perish from the earth.

Abraham Lincoln
November 19, 1863
"""

DECLARATION = """# The Declaration of Independence

The Declaration of Independence was adopted by the Second Continental Congress, meeting in Philadelphia, on July 4, 1776. Its principal author was Thomas Jefferson. The text below is an excerpt: the opening, the statement of principles, and the conclusion.

## In Congress, July 4, 1776

The unanimous Declaration of the thirteen united States of America.

When in the Course of human events, it becomes necessary for one people to dissolve the political bands which have connected them with another, and to assume among the powers of the earth, the separate and equal station to which the Laws of Nature and of Nature's God entitle them, a decent respect to the opinions of mankind requires that they should declare the causes which impel them to the separation.

## Statement of principles

We hold these truths to be self-evident, that all men are created equal, that they are endowed by their Creator with certain unalienable Rights, that among these are Life, Liberty and the pursuit of Happiness. That to secure these rights, Governments are instituted among Men, deriving their just powers from the consent of the governed. That whenever any Form of Government becomes destructive of these ends, it is the Right of the People to alter or to abolish it, and to institute new Government, laying its foundation on such principles and organizing its powers in such form, as to them shall seem most likely to effect their Safety and Happiness.

Prudence, indeed, will dictate that Governments long established should not be changed for light and transient causes; and accordingly all experience hath shewn, that mankind are more disposed to suffer, while evils are sufferable, than to right themselves by abolishing the forms to which they are accustomed. But when a long train of abuses and usurpations, pursuing invariably the same Object evinces a design to reduce them under absolute Despotism, it is their right, it is their duty, to throw off such Government, and to provide new Guards for their future security.

## Conclusion

We, therefore, the Representatives of the united States of America, in General Congress, Assembled, appealing to the Supreme Judge of the world for the rectitude of our intentions, do, in the Name, and by Authority of the good People of these Colonies, solemnly publish and declare, That these United Colonies are, and of Right ought to be Free and Independent States; that they are Absolved from all Allegiance to the British Crown, and that all political connection between them and the State of Great Britain, is and ought to be totally dissolved; and that as Free and Independent States, they have full Power to levy War, conclude Peace, contract Alliances, establish Commerce, and to do all other Acts and Things which Independent States may of right do.

And for the support of this Declaration, with a firm reliance on the protection of divine Providence, we mutually pledge to each other our Lives, our Fortunes and our sacred Honor.
"""

# (SQuAD article title, output file, document title, paragraphs used, paragraphs per section)
WIKIPEDIA = [
    ("Apollo_program", "apollo_program.html", "Apollo program", 8),
    ("Black_Death", "black_death.pdf", "Black Death", 8),
    ("Packet_switching", "packet_switching.docx", "Packet switching", 8),
    ("Victoria_(Australia)", "victoria_australia.md", "Victoria (Australia)", 6),
]


def squad_paragraphs(path: Path, title: str, n: int) -> list[str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    for article in data["data"]:
        if article["title"] == title:
            return [p["context"].strip() for p in article["paragraphs"][:n]]
    raise SystemExit(f"{title} not found in {path}")


def sections(paras: list[str]) -> list[tuple[str, list[str]]]:
    # Two sections so the section path has something to show.
    half = (len(paras) + 1) // 2
    return [("Overview", paras[:half]), ("History and details", paras[half:])]


def write_html(path: Path, title: str, paras: list[str]) -> None:
    body = [f"<h1>{html.escape(title)}</h1>"]
    for head, ps in sections(paras):
        body.append(f"<h2>{html.escape(head)}</h2>")
        body.extend(f"<p>{html.escape(p)}</p>" for p in ps)
    body.append("<p><small>From Wikipedia, CC BY-SA 4.0 (via the SQuAD v1.1 dev set).</small></p>")
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
    path.write_text(page, encoding="utf-8")


def write_md(path: Path, title: str, paras: list[str]) -> None:
    lines = [f"# {title}", ""]
    for head, ps in sections(paras):
        lines += [f"## {head}", ""]
        for p in ps:
            lines += [p, ""]
    lines += ["*From Wikipedia, CC BY-SA 4.0 (via the SQuAD v1.1 dev set).*", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def write_pdf(path: Path, title: str, paras: list[str]) -> None:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_author("Wikipedia contributors")
    pdf.set_creation_date(datetime(2024, 1, 1, tzinfo=timezone.utc))  # noqa: UP017 - reproducible bytes; py3.10 has no datetime.UTC
    font = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if font.is_file():
        pdf.add_font("DejaVu", "", str(font))
        pdf.add_font("DejaVu", "B", str(font.with_name("DejaVuSans-Bold.ttf")))
        family = "DejaVu"
    else:  # core fonts are latin-1 only
        family = "Helvetica"
        paras = [p.encode("latin-1", "replace").decode("latin-1") for p in paras]
    for i, (head, ps) in enumerate(sections(paras)):
        pdf.add_page()  # one section per page, so page numbers differ
        if i == 0:
            pdf.set_font(family, "B", 18)
            pdf.multi_cell(0, 10, title)
            pdf.ln(2)
        pdf.set_font(family, "B", 14)
        pdf.multi_cell(0, 8, head)
        pdf.ln(2)
        pdf.set_font(family, "", 11)
        for p in ps:
            pdf.multi_cell(0, 6, p)
            pdf.ln(4)
    pdf.set_font(family, "", 8)
    pdf.multi_cell(0, 5, "From Wikipedia, CC BY-SA 4.0 (via the SQuAD v1.1 dev set).")
    pdf.output(str(path))


def write_docx(path: Path, title: str, paras: list[str]) -> None:
    import docx

    d = docx.Document()
    d.core_properties.title = title
    d.core_properties.author = "Wikipedia contributors"
    d.add_heading(title, level=1)
    for head, ps in sections(paras):
        d.add_heading(head, level=2)
        for p in ps:
            d.add_paragraph(p)
    d.add_paragraph("From Wikipedia, CC BY-SA 4.0 (via the SQuAD v1.1 dev set).")
    d.save(str(path))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--squad", type=Path, default=DEFAULT_SQUAD, help="SQuAD v1.1 JSON file")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gettysburg_address.txt").write_text(GETTYSBURG, encoding="utf-8")
    (args.out / "declaration_of_independence.md").write_text(DECLARATION, encoding="utf-8")
    writers = {".html": write_html, ".md": write_md, ".pdf": write_pdf, ".docx": write_docx}
    for article, name, title, n in WIKIPEDIA:
        out = args.out / name
        writers[out.suffix](out, title, squad_paragraphs(args.squad, article, n))
    for f in sorted(args.out.iterdir()):
        print(f"{f.stat().st_size:>8}  {f.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
