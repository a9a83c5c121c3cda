"""Every work in the bibliography (`chapters/references.bib`) says where to read it.

An entry gives a `url`, a `doi` (a public address at doi.org) or an arXiv `eprint`; a reader of
the book, or of the PDF, can follow each citation. Read with pybtex, the parser the book's
bibliography itself uses; no build needed.
"""

from __future__ import annotations

from pathlib import Path

BIB = Path(__file__).resolve().parents[1] / "chapters" / "references.bib"


def test_every_entry_has_a_public_address():
    from pybtex.database import parse_file

    entries = parse_file(str(BIB)).entries
    assert len(entries) >= 15
    missing = [
        key
        for key, entry in entries.items()
        if not {"url", "doi", "eprint"} & {f.lower() for f in entry.fields}
    ]
    assert not missing, f"entries with no url, doi or eprint: {missing}"
