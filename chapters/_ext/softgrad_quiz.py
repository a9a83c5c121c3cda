"""Self-test quizzes in the static book: jupyterquiz without a kernel and without a network.

A chapter's quiz is a code cell that calls ``jupyterquiz.display_quiz(questions)``. In Jupyter
that displays the quiz as jupyterquiz intends: an HTML container and a script that carries the
library's whole JavaScript and the questions. In the HTML book that script would be inline in
the page once per quiz, and it holds a fallback that loads MathJax from a CDN when the page's
own MathJax has not started yet. So the book does two things instead:

1. ``_static/jupyterquiz.js`` is the JavaScript of the installed, pinned jupyterquiz package,
   concatenated in the order ``display_quiz`` uses, written into the build and loaded on every
   page (``app.add_js_file``).
2. Each page's jupyterquiz script is replaced by its questions alone, as
   ``<script type="application/json" class="sg-quiz" data-for="<container id>">``; the book's
   ``_static/softgrad-quiz.js`` calls jupyterquiz's ``show_questions`` on them once MathJax has
   typeset the page, so the fallback is never taken.

The container div and the stylesheet that ``display_quiz`` emits as HTML are kept as they are.
Tested by tests/test_book.py (the scripts are rewritten, every answer has an explanation, the
shipped JavaScript is the package's) and tests/test_browser.py (a quiz answers a click offline).
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

JS_NAME = "jupyterquiz.js"

# what jupyterquiz.dynamic.loader writes first for a list of questions: var questions<ID>=<json>;
_QUIZ_SCRIPT = re.compile(
    r'<script type="application/javascript">var questions(?P<id>[A-Za-z]+)=(?P<json>.*?);\n\n'
    r"if \(typeof Question === 'undefined'\) \{.*?</script>",
    re.DOTALL,
)


def package_javascript() -> str:
    """jupyterquiz's JavaScript files, in the order its ``build_script`` concatenates them."""
    from importlib.metadata import version
    from importlib.resources import files

    js_dir = files("jupyterquiz").joinpath("js")
    parts = [
        f.read_bytes().decode("utf-8")
        for f in sorted(js_dir.iterdir(), key=lambda f: f.name)
        if f.name.endswith(".js")
    ]
    header = f"// jupyterquiz {version('jupyterquiz')} (MIT licence), copied from the installed package.\n"
    return header + "".join(parts)


def _rewrite(body: str) -> str:
    def questions_only(m: re.Match) -> str:
        questions = json.loads(m.group("json"))  # fails loudly if jupyterquiz changed its format
        data = json.dumps(questions).replace("</", "<\\/")
        return (
            f'<script type="application/json" class="sg-quiz" data-for="{html.escape(m.group("id"))}">'
            f"{data}</script>"
        )

    return _QUIZ_SCRIPT.sub(questions_only, body)


def _page_context(app, pagename, templatename, context, doctree):
    if "body" in context and "var questions" in context["body"]:
        context["body"] = _rewrite(context["body"])


def _write_javascript(app, exception):
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        (static / JS_NAME).write_text(package_javascript(), encoding="utf-8")


def setup(app):
    app.add_js_file(JS_NAME)
    app.connect("html-page-context", _page_context)
    app.connect("build-finished", _write_javascript)
