"""The book's table of contents, read once for the book and browser tests.

``SOFTGRAD_BOOK_TOC`` points the tests at another toc (a private build); the default is the
repository's ``_toc.yml``. Test modules import this through ``tests/conftest.py``, which puts
``tests/`` on ``sys.path`` (pytest's importlib mode does not).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_entries() -> list[str]:
    """Every document named in _toc.yml (root first), as written there."""
    toc = yaml.safe_load(
        Path(os.environ.get("SOFTGRAD_BOOK_TOC", ROOT / "_toc.yml")).read_text(encoding="utf-8")
    )
    entries = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                entries.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)

    walk(toc)
    return entries


def docname(entry: str) -> str:
    """A toc entry without its ``.md`` / ``.ipynb`` suffix (the page's path in the build)."""
    return entry.rsplit(".", 1)[0] if entry.endswith((".md", ".ipynb")) else entry
