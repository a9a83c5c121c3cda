"""MyST Markdown to the Markdown that plain Jupyter renders (book-infra owns this file).

The book's chapters and exercises are written in MyST: directives (theorems, proofs,
admonitions, list tables), roles (``{ref}``, ``{doc}``, ``{prf:ref}``, ``{eq}``, ``{cite}``),
``(label)=`` targets and labelled display math. JupyterLab, classic Notebook, VS Code and Colab
know none of these and show them as code blocks or literal text. ``Converter`` rewrites one
notebook's Markdown cells so that they read well there:

- a theorem, definition, lemma, ... becomes a bold heading ("**Theorem 1.1 (Shift invariance).**")
  followed by its text; a proof becomes "**Proof.**", its text and an end mark;
- an admonition becomes a block quote under its bold title; a dropdown (a worked solution) becomes
  ``<details>`` with the title as its summary;
- a list table becomes a pipe table under its caption;
- a role becomes a Markdown link whose text and target the book itself resolved (``Resolver``);
- a target ``(label)=`` becomes an HTML anchor ``<a id="label"></a>``, so that links keep their
  fragment; labelled math ``$$ ... $$ (label)`` gets an anchor and its equation number as ``\\tag``;
- a link to another page's source (``../chapters/01_softmax.md``) becomes a link to that page;
- math stays ``$...$`` / ``$$...$$``, and everything else is left byte for byte as written.

The Markdown is read with the book's own parser (myst-parser's markdown-it set-up, with the
book's extensions), and only the spans that parser reports as MyST syntax are rewritten: a
role's text inside a code span or a code block is never touched. A directive that has no
rendering here is an error that names it, not a silent code block.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Protocol


class ConversionError(ValueError):
    """MyST syntax the converter has no Jupyter rendering for (message says where)."""


class Resolver(Protocol):
    """What the converter asks the book: cross-references, numbers, anchors, links."""

    def role(self, name: str, content: str) -> str:
        """Markdown for the role ``{name}`content```, e.g. ``[Theorem 1.1](01_softmax.ipynb#thm-x)``."""

    def link(self, href: str) -> str | None:
        """The new target of a Markdown link ``[text](href)``, or None to keep it as written."""

    def target_id(self, label: str) -> str:
        """The HTML id the book gives the target ``(label)=``."""

    def proof_title(self, kind: str, label: str | None, title: str) -> str:
        """A theorem-like block's heading, e.g. ``Theorem 1.1 (Shift invariance)``."""

    def equation(self, label: str) -> tuple[str, str]:
        """(HTML id, number) of the labelled equation ``label``, e.g. ``("equation-x", "2.1")``."""

    def bibliography(self) -> str:
        """Markdown for the ``{bibliography}`` directive: the cited works, each with its anchor."""


def myst_parser_for(config=None):
    """The book's markdown-it parser (myst-parser's, with ``config``: a MdParserConfig)."""
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    if config is None:
        config = MdParserConfig(
            enable_extensions={"amsmath", "colon_fence", "deflist", "dollarmath"},
            dmath_double_inline=True,
        )
    return create_md_parser(config, RendererHTML)


# MyST block tokens that are left as written, and the ones that are dropped.
_KEEP = {
    "paragraph_open",
    "heading_open",
    "bullet_list_open",
    "ordered_list_open",
    "blockquote_open",
    "table_open",
    "dl_open",
    "hr",
    "code_block",
    "html_block",
    "math_block",
    "amsmath",
    "footnote_block_open",
}
_DROP = {"myst_line_comment", "myst_block_break", "front_matter"}
_ADMONITIONS = {
    "admonition",
    "attention",
    "caution",
    "danger",
    "error",
    "hint",
    "important",
    "note",
    "seealso",
    "tip",
    "warning",
}
_END_OF_PROOF = "∎"


@dataclass
class Converter:
    """Converts the Markdown of one page (``where`` names it in errors) for plain Jupyter."""

    resolver: Resolver
    where: str = "<markdown>"
    md: object = None

    def __post_init__(self):
        if self.md is None:
            self.md = myst_parser_for()

    # ----------------------------------------------------------------------------- blocks

    def convert(self, text: str) -> str:
        """The Jupyter Markdown for the MyST Markdown ``text``."""
        tokens = self.md.parse(text)
        lines = text.splitlines(keepends=True)
        out: list[str] = []
        done = 0  # lines[:done] are handled
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            j = _block_end(tokens, i)
            if tok.level != 0 or tok.map is None:
                i = j + 1
                continue
            start, end = tok.map
            out.append("".join(lines[done:start]))
            source = "".join(lines[start:end])
            out.append(self._block(tok, tokens[i : j + 1], source))
            done = end
            i = j + 1
        out.append("".join(lines[done:]))
        return "".join(out)

    def _block(self, tok, block_tokens, source: str) -> str:
        kind = tok.type
        if kind in _DROP:
            return ""
        if kind == "myst_target":
            return f'<a id="{html.escape(self.resolver.target_id(tok.content))}"></a>\n\n'
        if kind == "math_block_label":
            anchor, number = self.resolver.equation(tok.info)
            body = tok.content.strip("\n")
            return f'<a id="{html.escape(anchor)}"></a>\n\n$$\n{body}\n\\tag{{{number}}}\n$$\n'
        if kind in ("fence", "colon_fence") and tok.info.strip().startswith("{"):
            return self._directive(tok, source)
        if kind in ("fence", "colon_fence") or kind in _KEEP:
            return self._inline(block_tokens, source)
        raise ConversionError(f"{self.where}: no Jupyter rendering for Markdown block {kind!r}")

    # ----------------------------------------------------------------------------- inline

    def _inline(self, block_tokens, source: str) -> str:
        """``source`` with every role and page link rewritten, found in parse order."""
        cursor = 0
        for tok in block_tokens:
            for child in (tok.children or []) if tok.type == "inline" else []:
                if child.type in ("code_inline", "math_inline", "math_inline_double"):
                    at = source.find(child.content, cursor)
                    if at >= 0:  # a code span or math: skip over it, never rewrite inside
                        cursor = at + len(child.content)
                elif child.type == "myst_role":
                    name = child.meta["name"]
                    found = _role_pattern(name, child.content).search(source, cursor)
                    if not found:
                        raise ConversionError(
                            f"{self.where}: cannot locate the role {{{name}}}`{child.content}`"
                        )
                    new = self.resolver.role(name, child.content)
                    source = source[: found.start()] + new + source[found.end() :]
                    cursor = found.start() + len(new)
                elif child.type == "link_open":
                    href = child.attrs.get("href", "")
                    new = self.resolver.link(href)
                    at = source.find(f"]({href}", cursor)
                    if new is None or at < 0:
                        if new is not None:
                            raise ConversionError(
                                f"{self.where}: cannot locate the link target {href!r}"
                            )
                        continue
                    at += 2
                    source = source[:at] + new + source[at + len(href) :]
                    cursor = at + len(new)
        return source

    # ----------------------------------------------------------------------------- directives

    def _directive(self, tok, source: str) -> str:
        from myst_parser.parsers.directives import parse_directive_text

        name, _, first_line = tok.info.strip()[1:].partition("}")
        name, first_line = name.strip(), first_line.strip()
        cls = _directive_class(name)
        if cls is None:
            raise ConversionError(f"{self.where}: no Jupyter rendering for directive {{{name}}}")
        parsed = parse_directive_text(cls, first_line, tok.content, validate_options=False)
        title = " ".join(parsed.arguments)
        options = parsed.options
        body = self.convert("\n".join(parsed.body)).strip("\n")
        classes = options.get("class", [])
        if isinstance(classes, str):
            classes = classes.split()

        if name == "prf:proof":
            return (
                f"**Proof.** {body} {_END_OF_PROOF}\n"
                if "\n" not in body
                else (f"**Proof.**\n\n{body}\n\n{_END_OF_PROOF}\n")
            )
        if name.startswith("prf:"):
            label = options.get("label")
            heading = self.resolver.proof_title(name[4:], label, self._title(title))
            anchor = f'<a id="{html.escape(label)}"></a>\n\n' if label else ""
            return f"{anchor}**{heading}.**\n\n{body}\n"
        if name in _ADMONITIONS:
            heading = self._title(title) or name.capitalize()
            if "dropdown" in classes:
                return f"<details>\n<summary>{heading}</summary>\n\n{body}\n\n</details>\n"
            quoted = "\n".join(f"> {line}".rstrip() for line in body.splitlines())
            return f"> **{heading}**\n>\n{quoted}\n"
        if name == "list-table":
            return self._list_table(title, options, "\n".join(parsed.body))
        if name == "bibliography":
            return self.resolver.bibliography()
        if name in ("code", "code-block", "sourcecode"):
            fence = "`" * max(3, _longest_backtick_run(body) + 1)
            return f"{fence}{title}\n{body}\n{fence}\n"
        raise ConversionError(f"{self.where}: no Jupyter rendering for directive {{{name}}}")

    def _title(self, title: str) -> str:
        return self.convert(title).strip().replace("\n", " ") if title else ""

    def _list_table(self, caption: str, options: dict, body: str) -> str:
        """A GitHub pipe table from a list table (each cell's Markdown on one line)."""
        rows: list[list[str]] = []
        depth = 0
        for tok in self.md.parse(body):
            if tok.type == "bullet_list_open":
                depth += 1
            elif tok.type == "bullet_list_close":
                depth -= 1
            elif tok.type == "list_item_open" and depth == 1:
                rows.append([])
            elif tok.type == "list_item_open" and depth == 2:
                rows[-1].append("")
            elif tok.type == "inline" and depth == 2:
                # a cell's paragraphs, as written (markers and indentation are not content)
                cell = " ".join(self.convert(tok.content).split())
                rows[-1][-1] = " ".join(filter(None, [rows[-1][-1], cell.replace("|", "\\|")]))
        if not rows or any(len(r) != len(rows[0]) for r in rows):
            raise ConversionError(f"{self.where}: a list-table whose rows differ in length")
        header_rows = int(options.get("header-rows", 0) or 0)
        header = rows[0] if header_rows else [""] * len(rows[0])
        table = [_row(header), _row(["---"] * len(header))]
        table += [_row(r) for r in rows[header_rows:]]
        name = options.get("name")
        anchor = f'<a id="{html.escape(self.resolver.target_id(name))}"></a>\n\n' if name else ""
        head = f"{anchor}**{self._title(caption)}**\n\n" if caption else anchor
        return head + "\n".join(table) + "\n"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _block_end(tokens, i: int) -> int:
    """Index of the token that closes the block opened at ``tokens[i]`` (itself if none)."""
    tok = tokens[i]
    if tok.nesting != 1:
        return i
    depth = 0
    for j in range(i, len(tokens)):
        depth += tokens[j].nesting
        if depth == 0:
            return j
    return len(tokens) - 1


def _role_pattern(name: str, content: str) -> re.Pattern:
    # the content may have been wrapped across lines in the source: any run of white space
    words = r"\s+".join(re.escape(w) for w in content.split())
    return re.compile(r"\{" + re.escape(name) + r"\}`\s*" + words + r"\s*`")


def _longest_backtick_run(text: str) -> int:
    return max((len(m) for m in re.findall(r"`+", text)), default=0)


def _directive_class(name: str):
    """The class of the directive ``name`` (its argument and option syntax), or None."""
    if name.startswith("prf:"):
        from sphinx_proof.directive import ProofDirective
        from sphinx_proof.proof_type import PROOF_TYPES

        return ProofDirective if name == "prf:proof" else PROOF_TYPES.get(name[4:])
    if name == "bibliography":
        from sphinxcontrib.bibtex.directives import BibliographyDirective

        return BibliographyDirective
    from docutils.parsers.rst.directives import admonitions, body, tables

    known = {
        "list-table": tables.ListTable,
        "admonition": admonitions.Admonition,
        "code": body.CodeBlock,
        "code-block": body.CodeBlock,
        "sourcecode": body.CodeBlock,
    }
    for generic in _ADMONITIONS - {"admonition"}:
        # seealso is Sphinx's; its syntax is that of a note
        known[generic] = getattr(admonitions, generic.capitalize(), admonitions.Note)
    return known.get(name)
