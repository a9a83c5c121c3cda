"""Sphinx glue for the softgrad book (book-infra owns this file).

Offer a ``.ipynb`` download on every MyST Markdown chapter.

sphinx-book-theme shows an ".ipynb" entry in its download menu only when the page
context has ``ipynb_source``, and it sets that only when a launch service (Binder,
JupyterHub, ...) is configured -- which this offline book does not want. myst-nb
already writes each chapter as an executed notebook to
``<build>/jupyter_execute/<page>.ipynb``; this extension copies it next to the page
source in ``_sources/`` and sets ``ipynb_source`` before the theme builds its buttons.
Released exercise notebooks are ``.ipynb`` sources already, so the theme's
"download source" entry is the notebook itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def _offer_ipynb(app, pagename, templatename, context, doctree):
    if doctree is None or context.get("page_source_suffix") != ".md":
        return
    if "kernelspec" not in app.env.metadata.get(pagename, {}):
        return  # a plain Markdown page, not a notebook
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file():
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app):
    # The theme adds its header buttons at priority 501; run before it.
    app.connect("html-page-context", _offer_ipynb, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
