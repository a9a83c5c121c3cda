"""The MyST -> plain Jupyter Markdown converter (chapters/_ext/myst_to_jupyter.py), on awkward input.

The resolver here is a stub that answers in a fixed, recognisable way, so each test shows what the
converter itself does: which spans it rewrites, and that it leaves everything else byte for byte.
The book's real resolver (Sphinx's domains) is exercised by test_kit.py on the built book.
"""

from __future__ import annotations

import pytest
from myst_to_jupyter import ConversionError, Converter


class StubResolver:
    def role(self, name, content):
        return f"[{name}|{content}](target.ipynb)"

    def link(self, href):
        return "page.ipynb" if href.endswith(".md") else None

    def target_id(self, label):
        return f"id-{label}"

    def proof_title(self, kind, label, title):
        return f"{kind.title()} 9.9" + (f" ({title})" if title else "")

    def equation(self, label):
        return f"equation-{label}", "9.1"

    def bibliography(self):
        return "- the works\n"


def convert(text: str) -> str:
    return Converter(StubResolver(), where="test").convert(text)


def test_plain_markdown_is_left_byte_for_byte():
    text = (
        "# Title\n\nSome *text* with $x_i$ and `code`.\n\n"
        "| a | b |\n| --- | --- |\n| $p$ | 1 |\n\n```python\nx = 1\n```\n\n$$\nJ = I\n$$\n"
    )
    assert convert(text) == text


def test_roles_become_links_but_not_inside_code():
    text = "See {ref}`sec-a` and `{ref}`sec-b`` in code, then {doc}`04_cross_entropy`.\n"
    out = convert(text)
    assert "[ref|sec-a](target.ipynb)" in out
    assert "`{ref}`sec-b``" in out  # a code span showing the syntax stays as it is
    assert "[doc|04_cross_entropy](target.ipynb)" in out


def test_a_role_wrapped_across_lines_is_found():
    out = convert("the {ref}`references\n<sec-bibliography>` point to\n")
    assert "[ref|references <sec-bibliography>](target.ipynb)" in out
    assert "{ref}" not in out


def test_a_role_text_inside_a_fenced_block_is_not_touched():
    text = "```md\nWrite {cite}`key` for a citation.\n```\n"
    assert convert(text) == text


def test_target_becomes_an_anchor_with_a_blank_line_before_the_heading():
    out = convert("(sec-x)=\n# Heading\n")
    # without the blank line the heading would be swallowed by the HTML block
    assert out == '<a id="id-sec-x"></a>\n\n# Heading\n'


def test_labelled_equation_keeps_its_math_and_gets_its_number():
    out = convert("$$\nv^\\top J v \\ge 0\n$$ (eq-psd)\n")
    assert '<a id="equation-eq-psd"></a>' in out
    assert "$$\nv^\\top J v \\ge 0\n\\tag{9.1}\n$$" in out
    assert "(eq-psd)" not in out


def test_theorem_and_proof_with_nested_admonition_and_roles():
    text = (
        "````{prf:theorem} Shift invariance\n:label: thm-shift\n\n"
        "For every $c$, see {eq}`eq-a`.\n\n"
        "```{admonition} Note\n:class: warning\n\nMind {doc}`x`.\n```\n"
        "````\n\n```{prf:proof}\nOne line.\n```\n"
    )
    out = convert(text)
    assert '<a id="thm-shift"></a>' in out
    assert "**Theorem 9.9 (Shift invariance).**" in out
    assert "[eq|eq-a](target.ipynb)" in out
    assert "> **Note**\n>\n> Mind [doc|x](target.ipynb)." in out
    assert "**Proof.** One line. ∎" in out
    assert "{prf:" not in out
    assert ":label:" not in out


def test_dropdown_is_details_with_markdown_inside():
    out = convert("```{admonition} Solution\n:class: dropdown\n\nThe answer is $p - y$.\n```\n")
    assert out == (
        "<details>\n<summary>Solution</summary>\n\nThe answer is $p - y$.\n\n</details>\n"
    )


def test_list_table_becomes_a_pipe_table_and_escapes_pipes():
    text = (
        "```{list-table} Caption with $p$.\n:header-rows: 1\n:name: tab-x\n\n"
        "* - Symbol\n  - Meaning\n* - $\\lvert x \\rvert$\n  - absolute value, $|x|$\n"
        "    over two lines, {ref}`sec-a`\n```\n"
    )
    out = convert(text)
    assert '<a id="id-tab-x"></a>' in out
    assert "**Caption with $p$.**" in out
    assert "| Symbol | Meaning |\n| --- | --- |\n" in out
    assert (
        "| $\\lvert x \\rvert$ | absolute value, $\\|x\\|$ over two lines, [ref\\|sec-a](target.ipynb) |"
        in out
    )


def test_links_to_page_sources_are_rewritten_and_web_links_kept():
    out = convert(
        "Read [Softmax](../chapters/01_softmax.md) and [the docs](https://example.org).\n"
    )
    assert "[Softmax](page.ipynb)" in out
    assert "[the docs](https://example.org)" in out


def test_comments_are_dropped():
    assert convert("% a note to authors\nText.\n") == "Text.\n"


@pytest.mark.parametrize(
    "text",
    ["```{figure} x.png\nA figure.\n```\n", "```{tabbed} A\nB\n```\n", ":::{exercise}\nX\n:::\n"],
)
def test_a_directive_without_a_rendering_is_a_named_error(text):
    with pytest.raises(ConversionError, match=r"test: no Jupyter rendering for directive"):
        convert(text)
