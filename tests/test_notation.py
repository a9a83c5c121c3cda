"""One notation in every chapter: a guard for the Start page's table (`tab-notation`).

Read from the sources in `_toc.yml` (no build needed, well under a second):

- every dimension a chapter writes, in a shape `\\mathbb R^{N \\times n}` or a shape cell `$(N, n)$` of
  its notation tables, is one of the book's dimensions (DIMS): `n` classes, `N` rows, `D` features,
  `M` keys and so on, never a second name for one of them (`C` or `V` classes, `d` features);
- the book's named arrays have the shapes of the Start page wherever a chapter declares them
  (SHAPES): $W$ is $D \\times n$ (chapter 8 stores it $n \\times D$, and says so), $Z$ is $N \\times n$, ...;
- letters the book has retired for an idea do not come back (RETIRED: $\\tau$ was a second temperature);
- the Start page's table names every one of these symbols and dimensions.

A new symbol or dimension belongs in the Start page's table first, then here.
"""

from __future__ import annotations

import re
from pathlib import Path

from booktoc import docname, toc_entries

ROOT = Path(__file__).resolve().parents[1]
START = ROOT / "chapters" / "00_start_here.md"

# Dimensions: classes, rows, features, hidden width, keys, key and value widths, attention's model
# width, a Jacobian's outputs (chapter 5), chapter 8's rows per chunk and classes per block.
#: chapter 9 counts classes with the frameworks' C (said on the Start page, with the seeds' letters)
FRAMEWORK_LETTERS = {("C", "chapters/09_frameworks")}
DIMS = {"n", "N", "D", "D_h", "M", "d_k", "d_v", "d_model", "m", "R", "B"}

# Declared shapes of the named arrays, as sets of dimension tuples; chapter 8 holds W one row per
# class (softgrad's and a language model's layout), which its notation paragraph says.
SHAPES = {
    "z": {("n",)},
    "y": {("n",)},
    "p": {("n",)},
    "Z": {("N", "n")},
    "Y": {("N", "n")},
    "P": {("N", "n"), ("N", "M")},  # attention's weights: the M keys are its classes
    "G": {("N", "n")},
    "X": {("N", "D"), ("N", "d_model")},
    "W": {("D", "n"), ("n", "D")},
    "W_1": {("D", "D_h")},
    "W_2": {("D_h", "n")},
    "b": {("n",)},
    "Q": {("N", "d_k")},
    "K": {("M", "d_k")},
    "V": {("M", "d_v")},
    "S": {("N", "M")},
    "O": {("N", "d_v")},
    "dO": {("N", "d_v")},
    "\\rho": {("N",)},
    "\\ell": {("N",)},
}
ONLY_IN = {("W", ("n", "D")): {"chapters/08_linear_cross_entropy"}}

RETIRED = {"\\tau": "the temperature is $T$ everywhere"}

_CODE = re.compile(r"(?ms)^(`{3,})\{code-cell\}.*?^\1\s*$")
_MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$]+?)\$", re.DOTALL)
_TOKEN = re.compile(r"[A-Za-z](?:_\{(?:[^{}]|\{[^{}]*\})*\}|_[A-Za-z0-9])?|\d+")


def _sources() -> dict[str, str]:
    """Every Markdown page of the toc, without its code cells (whose YAML captions stay out too)."""
    out = {}
    for entry in toc_entries():
        path = ROOT / f"{docname(entry)}.md"
        if path.is_file():
            out[docname(entry)] = _CODE.sub("", path.read_text(encoding="utf-8"))
    return out


def _dim(token: str) -> str:
    token = re.sub(r"\\(?:mathrm|text)\{([^{}]*)\}", r"\1", token)
    return token.replace("{", "").replace("}", "")


def _braced(text: str, start: int) -> tuple[str, int]:
    """The group starting at text[start] ('{...}' with nesting, or one token) and its end."""
    if text[start] != "{":
        m = re.compile(r"[A-Za-z0-9]").match(text, start)
        return (m.group(0), m.end()) if m else ("", start)
    depth = 0
    for k in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[k], 0)
        if depth == 0:
            return text[start + 1 : k], k + 1
    return text[start + 1 :], len(text)


def _shapes(page: str, text: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(page, symbol or '', dims) for every shape the page declares."""
    found = []
    for m in _MATH.finditer(text):
        math = m.group(1) or m.group(2)
        for at in re.finditer(r"\\mathbb\s*\{?R\}?\s*\^\s*", math):
            exponent, _ = _braced(math, at.end())
            dims = tuple(
                _dim(t) for part in re.split(r"\\times|,", exponent) for t in _TOKEN.findall(part)
            )
            # the symbol is the whole left side ("W \\in", "For ... $Q \\in"), not the end of a
            # product ("X^\\top G \\in" declares the product's shape, not G's)
            before = re.search(
                r"(?:^|[,;(&]|\\quad|\\qquad)\s*((?:\\[a-z]+|d?[A-Za-z])(?:_\{?[A-Za-z0-9]\}?)?)"
                r"\s*\\in\s*$",
                math[: at.start()],
            )
            symbol = before.group(1).replace("{", "").replace("}", "") if before else ""
            found.append((page, symbol, dims))
    for row in re.finditer(r"^\|\s*\$([^$|]+)\$\s*\|(.*)$", text, re.MULTILINE):
        for shape in re.findall(r"\$\(([^)$]*)\)\$", row.group(2)):
            dims = tuple(_dim(t) for t in _TOKEN.findall(shape))
            found.append((page, row.group(1).strip(), dims))
    return found


SOURCES = _sources()
DECLARED = [s for page, text in SOURCES.items() for s in _shapes(page, text)]


def test_the_guard_sees_the_chapters():
    # if the patterns stop matching the way chapters write shapes, the other tests would pass vacuously
    assert len(SOURCES) >= 9
    symbols = {symbol for _, symbol, _ in DECLARED}
    assert {"z", "Z", "W", "X", "Q", "K", "V", "P"} <= symbols, sorted(symbols)
    assert len(DECLARED) >= 40


def test_every_dimension_is_one_of_the_books():
    problems = [
        f"{page}: {symbol or '?'} in R^{'x'.join(dims)}: {d!r} is not a dimension of the book"
        for page, symbol, dims in DECLARED
        for d in dims
        if not d.isdigit() and d not in DIMS and (d, page) not in FRAMEWORK_LETTERS
    ]
    assert not problems, "\n".join(problems)


def test_named_arrays_have_their_shapes():
    problems = []
    for page, symbol, dims in DECLARED:
        if symbol not in SHAPES or len(dims) == 1 and len(next(iter(SHAPES[symbol]))) > 1:
            continue  # a row count alone ("X in R^N" is not written); only full shapes are compared
        if dims not in SHAPES[symbol]:
            problems.append(f"{page}: {symbol} is {dims}, the book's shapes are {SHAPES[symbol]}")
        elif page not in ONLY_IN.get((symbol, dims), {page}):
            problems.append(f"{page}: {symbol} is {dims}, which only {ONLY_IN[symbol, dims]} uses")
    assert not problems, "\n".join(problems)


def test_retired_letters_stay_retired():
    problems = [
        f"{page}: {letter} ({why})"
        for page, text in SOURCES.items()
        for m in _MATH.finditer(text)
        for letter, why in RETIRED.items()
        if re.search(re.escape(letter) + r"(?![A-Za-z])", m.group(1) or m.group(2))
    ]
    assert not problems, "\n".join(problems)


def test_the_start_page_table_names_them():
    text = START.read_text(encoding="utf-8")
    table = text[
        text.index(":name: tab-notation") : text.index("**Where the book uses other letters")
    ]
    math = " ".join(m.group(1) or m.group(2) for m in _MATH.finditer(table))
    commands = set(re.findall(r"\\[A-Za-z]+", math))
    letters = re.sub(r"\\mathbb\s*\{?R\}?|\\(?!mathrm)[A-Za-z]+", " ", math)  # \\in, \\times, R
    tokens = {_dim(t) for t in _TOKEN.findall(letters)} | commands
    missing = sorted((set(SHAPES) - {"dO", "W_1", "W_2"} | DIMS - {"d_model", "m"}) - tokens)
    assert not missing, f"not in the Start page's notation table: {missing}"


def test_the_package_docstrings_use_the_books_dimensions():
    """softgrad's public docstrings write shapes with the book's letters ((N, n), (n, D), ...)."""
    import importlib

    import softgrad

    docs = {"softgrad": softgrad.__doc__ or ""}
    for name in softgrad.__all__:
        docs[f"softgrad.{name}"] = getattr(softgrad, name).__doc__ or ""
    for module in ("_softmax", "_losses", "_linear", "_gradcheck", "_rows", "_validation"):
        docs[f"softgrad.{module}"] = importlib.import_module(f"softgrad.{module}").__doc__ or ""
    words = {"rows", "chunk", "block"}  # a count the text names in words
    # a shape: after "shape", after "is"/"are", or before the noun it measures ("two (chunk, n)
    # arrays"); never a call in an example
    pattern = re.compile(
        r"(?:shape\s*|\b(?:is|are)\s+)\(([^()\[\]]*)\)"
        r"|\(([^()\[\]]*)\)[ \t]+(?:arrays?|blocks?|logits|matrix|matrices|weights)\b"
    )
    problems = []
    for where, doc in docs.items():
        for m in pattern.finditer(doc):
            shape = m.group(1) if m.group(1) is not None else m.group(2)
            parts = [p.strip() for p in shape.split(",") if p.strip()]
            parts = [p for p in parts if p != "..." and not p.endswith("...")]  # any batch axes
            bad = [p for p in parts if not (p.isdigit() or p in DIMS or p in words)]
            if bad:
                problems.append(f"{where}: shape ({shape}): {bad} not the book's dimensions")
    assert not problems, "\n".join(problems)
