"""Sphinx glue for the softgrad book (book-infra owns this file).

Small fixes that keep the book working from disk, offline, with a clean console:

1. Offer a ``.ipynb`` download on every MyST Markdown chapter (see below), and the course kit
   on every page; the notebooks are converted for plain Jupyter (``softgrad_notebooks``).
2. Drop sphinx-thebe's scripts and stylesheet from every page. Jupyter Book always loads
   sphinx-thebe; the book has no live kernels (``launch_buttons.thebe: false``), yet the
   extension still injects a script naming a CDN URL, twice, which is a console
   SyntaxError ("THEBE_JS_URL has already been declared").
3. Give the theme a default colour mode ("light"): without one, pydata-sphinx-theme logs
   "Got invalid theme mode" as a console error on a reader's first visit.
4. Load MathJax on every page, not only on pages whose body has math: chapter titles with
   math ($p - y$) appear in every page's navigation and must be typeset there too.
5. A pybtex style "softgrad" (``bibtex_default_style``): pybtex's plain style whose labels
   are "Author and Author, year", so the bibliography's labels match the author-year
   citations in the text instead of showing [1], [2], ...
6. Key the execution cache on the softgrad package too. jupyter-cache re-runs a chapter
   only when its code cells change, so after a change to ``src/softgrad`` the book would
   keep showing outputs computed by the old code. The cache directory gets a subdirectory
   per hash of the package's source (``softgrad-<hash>``): an unchanged book with an
   unchanged package executes nothing; a changed package re-executes every chapter once.
7. The self-test quizzes (``softgrad_quiz``): jupyterquiz's JavaScript is served from
   ``_static`` and each quiz's inline script is reduced to its questions.

About (1):

sphinx-book-theme shows an ".ipynb" entry in its download menu only when the page
context has ``ipynb_source``, and it sets that only when a launch service (Binder,
JupyterHub, ...) is configured -- which this offline book does not want. myst-nb
already writes each chapter as an executed notebook to
``<build>/jupyter_execute/<page>.ipynb``; ``softgrad_notebooks`` converts it for plain
Jupyter into ``_sources/<page>.ipynb`` and sets ``ipynb_source`` before the theme builds its
buttons. Released exercise notebooks are ``.ipynb`` sources already, so the theme's
"download source" entry is the notebook, converted the same way.
"""

from __future__ import annotations

from pathlib import Path


def _drop_thebe(app, pagename, templatename, context, doctree):
    def is_thebe(asset):
        name = str(getattr(asset, "filename", None) or "")
        body = str(getattr(asset, "attributes", {}).get("body", ""))
        return "sphinx-thebe" in name or "THEBE_JS_URL" in body

    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [asset for asset in context[key] if not is_thebe(asset)]


def _default_mode(app, pagename, templatename, context, doctree):
    # pydata-sphinx-theme reads this template variable (html_context), not a theme option.
    context["default_mode"] = context.get("default_mode") or "light"


def _author_year_style():
    from pybtex.richtext import Text
    from pybtex.style.formatting.plain import Style as PlainStyle
    from pybtex.style.labels import BaseLabelStyle

    def surname(person):
        return Text.from_latex(" ".join(person.last_names)).render_as("text")

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            for entry in sorted_entries:
                names = [
                    surname(p) for p in entry.persons.get("author", entry.persons.get("editor", []))
                ]
                if not names:
                    who = entry.fields.get("title", entry.key)
                elif len(names) == 1:
                    who = names[0]
                elif len(names) == 2:
                    who = f"{names[0]} and {names[1]}"
                else:
                    who = f"{names[0]} et al."
                yield f"{who}, {entry.fields.get('year', 'n.d.')}"

    class AuthorYearStyle(PlainStyle):
        default_label_style = AuthorYearLabels

    return AuthorYearStyle


def _package_digest() -> str | None:
    """A hash of softgrad's Python source (not grading/ nor kit.py: chapters do not use them)."""
    import hashlib
    import importlib.util

    spec = importlib.util.find_spec("softgrad")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in ("grading", "kit.py"):
            continue
        digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _cache_per_package(app, config):
    base = config.nb_execution_cache_path
    digest = _package_digest()
    if base and digest:
        config.nb_execution_cache_path = str(Path(base) / f"softgrad-{digest}")


def setup(app):
    app.connect("config-inited", _cache_per_package)
    import pybtex.plugin

    pybtex.plugin.register_plugin("pybtex.style.formatting", "softgrad", _author_year_style())
    app.set_html_assets_policy("always")
    app.connect("html-page-context", _default_mode)
    app.connect("html-page-context", _drop_thebe, priority=900)
    # The downloaded notebooks, their download buttons and the course kit (softgrad_notebooks).
    import softgrad_notebooks

    softgrad_notebooks.setup(app)
    # The self-test quizzes: jupyterquiz's JavaScript served from _static (softgrad_quiz).
    import softgrad_quiz

    softgrad_quiz.setup(app)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
