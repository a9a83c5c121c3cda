"""The notebooks readers download, and the course kit (book-infra owns this file).

At the end of the HTML build, every page of the book becomes a notebook for plain Jupyter:

- a chapter (a MyST Markdown notebook) is the notebook myst-nb executed, so its outputs are
  there; an exercise is its released ``.ipynb``; a plain Markdown page (For instructors,
  Bibliography) is one Markdown cell;
- its Markdown cells go through ``myst_to_jupyter.Converter``, with cross-references resolved
  by the book's own domains (``BookResolver``: the same text and target as on the page);
- a set-up cell goes first: when ``softgrad`` is missing it says what to install and where;
- ``hide-input`` / ``hide-output`` / ``hide-cell`` tags become JupyterLab's collapsed input and
  output; build-only metadata (myst-nb's source map, jupytext's, execution times) is dropped.

The same bytes go to the page's download button (``_sources/<page>.ipynb``) and into the kit
(``kit/softgrad-course-kit.zip``, beside the wheel and ``SHA256SUMS``; ``softgrad.kit``).

Links: with ``html.baseurl`` set, a cross-reference points to the page on the web
(``<baseurl>/chapters/01_softmax.html#thm-...``); without one, to the page's notebook in the
kit, relative (``01_softmax.ipynb#thm-...``), and every fragment is an ``<a id>`` the
converted notebook carries, equal to the book's HTML id. Markdown links between pages stay
relative in both cases, so an exercise's locked cells are byte for byte those the grader knows.
"""

from __future__ import annotations

import copy
import hashlib
import posixpath
import re
import zipfile
from pathlib import Path

from docutils import nodes
from myst_to_jupyter import ConversionError, Converter, myst_parser_for
from sphinx import addnodes
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)

KIT_DIR = "kit"  # in the built site
SETUP_ID = "softgrad-setup"

_ROLES = {
    "ref": ("std", "ref"),
    "numref": ("std", "numref"),
    "doc": ("std", "doc"),
    "eq": ("math", "eq"),
    "prf:ref": ("prf", "ref"),
    "cite": ("cite", "p"),
}
_EXPLICIT = re.compile(r"(?s)^(.+?)\s*<([^<>]+)>$")


class BookResolver:
    """Resolves a page's MyST roles with the book's domains (``myst_to_jupyter.Resolver``)."""

    def __init__(self, app, docname: str):
        self.app, self.env, self.docname = app, app.env, docname
        self.baseurl = (app.config.html_baseurl or "").rstrip("/")

    # -- links
    def page_link(self, docname: str, anchor: str | None = None) -> str:
        frag = f"#{anchor}" if anchor else ""
        if self.baseurl:
            return f"{self.baseurl}/{docname}.html{frag}"
        if docname == self.docname:
            return frag or posixpath.basename(docname) + ".ipynb"
        here = posixpath.dirname(self.docname)
        return posixpath.relpath(f"{docname}.ipynb", here or ".") + frag

    def _href(self, node) -> str:
        if node.get("refid"):
            return self.page_link(self.docname, node["refid"])
        uri = node.get("refuri", "")
        if re.match(r"^[a-z][a-z0-9+.-]*:", uri):
            return uri  # a web address
        path, _, anchor = uri.partition("#")
        if not path:
            return self.page_link(self.docname, anchor or None)
        target = posixpath.normpath(posixpath.join(posixpath.dirname(self.docname), path))
        if not target.endswith(".html") or target[:-5] not in self.env.all_docs:
            raise ConversionError(f"{self.docname}: a reference to {uri!r}, which is not a page")
        return self.page_link(target[:-5], anchor or None)

    def link(self, href: str) -> str | None:
        """A Markdown link to another page's source (``x.md``, ``x.ipynb``): to its notebook."""
        if re.match(r"^[a-z][a-z0-9+.-]*:", href) or href.startswith("#"):
            return None
        path, _, anchor = href.partition("#")
        base = posixpath.normpath(posixpath.join(posixpath.dirname(self.docname), path))
        doc = re.sub(r"\.(md|ipynb)$", "", base)
        if doc not in self.env.all_docs:
            raise ConversionError(f"{self.docname}: the link {href!r} is not a page of the book")
        here = posixpath.dirname(self.docname) or "."
        new = posixpath.relpath(f"{doc}.ipynb", here) + (f"#{anchor}" if anchor else "")
        return None if new == href else new

    # -- roles
    def role(self, name: str, content: str) -> str:
        if name == "kit":
            return self._kit_role(content)
        if name.startswith("cite:"):
            domain, typ = "cite", name[5:]
        elif name in _ROLES:
            domain, typ = _ROLES[name]
        else:
            raise ConversionError(f"{self.docname}: no Jupyter rendering for the role {{{name}}}")
        m = _EXPLICIT.match(content) if domain != "cite" else None
        title, target = (m.group(1), m.group(2)) if m else (content, content)
        xref = addnodes.pending_xref(
            content,
            refdomain=domain,
            reftype=typ,
            reftarget=target,
            refexplicit=bool(m),
            refdoc=self.docname,
            refwarn=True,
        )
        contnode = nodes.inline(title, title)
        if domain == "std" and typ == "doc" and not m:
            doc = self._docname(target)
            title_node = self.env.titles.get(doc)
            if title_node is None:
                raise ConversionError(f"{self.docname}: {{doc}}`{content}` is not a page")
            return f"[{self._markdown(title_node)}]({self.page_link(doc)})"
        domain_obj = self.env.get_domain(domain)
        result = domain_obj.resolve_xref(
            self.env, self.docname, self.app.builder, typ, target, xref, contnode
        )
        if result is None:
            raise ConversionError(f"{self.docname}: {{{name}}}`{content}` does not resolve")
        return self._markdown(result)

    def _docname(self, target: str) -> str:
        if target.startswith("/"):
            return target.lstrip("/")
        return posixpath.normpath(posixpath.join(posixpath.dirname(self.docname), target))

    def _kit_role(self, filename: str) -> str:
        filename = kit_filename(filename)
        if self.baseurl:
            return f"[`{filename}`]({self.baseurl}/{KIT_DIR}/{filename})"
        return f"`{filename}`"

    def _markdown(self, node) -> str:
        if isinstance(node, nodes.Text):
            return re.sub(r"([\[\]*_\\`])", r"\\\1", node.astext())
        if isinstance(node, nodes.math):
            return f"${node.astext()}$"
        inner = "".join(self._markdown(c) for c in node.children)
        if isinstance(node, nodes.reference):
            return f"[{inner}]({self._href(node)})"
        if isinstance(node, nodes.emphasis):
            return f"*{inner}*"
        if isinstance(node, nodes.strong):
            return f"**{inner}**"
        if isinstance(node, nodes.literal):
            return f"`{node.astext()}`"
        return inner

    # -- targets and numbers
    def target_id(self, label: str) -> str:
        std = self.env.get_domain("std")
        return std.labels.get(label, (None, label))[1] or label

    def proof_title(self, kind: str, label: str | None, title: str) -> str:
        from sphinx_proof.domain import translate

        number = ""
        match = getattr(self.env, "proof_list", {}).get(label) if label else None
        if match and not match.get("nonumber"):
            numbers = self.env.toc_fignumbers.get(match["docname"], {})
            number = " " + ".".join(map(str, numbers.get(match["countertype"], {}).get(label, ())))
        heading = f"{translate(kind.title())}{number}".rstrip()
        return f"{heading} ({title})" if title else heading

    def equation(self, label: str) -> tuple[str, str]:
        from docutils.nodes import make_id

        math = self.env.get_domain("math")
        docname, number = math.equations.get(label, (None, None))
        if docname is None:
            raise ConversionError(f"{self.docname}: no equation labelled {label!r}")
        node_id = make_id(f"equation-{label}")
        eqno = str(number)
        if self.env.config.math_numfig and self.env.config.numfig:
            numbers = self.env.toc_fignumbers.get(docname, {}).get("displaymath", {})
            eqno = ".".join(map(str, numbers.get(node_id, ()))) or eqno
        return node_id, eqno

    def bibliography(self) -> str:
        domain = self.env.get_domain("cite")
        items = []
        for cit in domain.citations:
            if cit.bibliography_key.docname != self.docname:
                continue
            text = cit.formatted_entry.text.render_as("markdown").strip()
            items.append(
                f'- <a id="{cit.citation_id}"></a>**[{cit.formatted_entry.label}]** {text}'
            )
        if not items:
            raise ConversionError(f"{self.docname}: a bibliography with no cited works")
        return "\n".join(items) + "\n"


# --------------------------------------------------------------------------- the set-up cell


def setup_cell_source(baseurl: str, wheel_name: str, kit_name: str) -> str:
    """The first cell of every downloaded notebook (see the module docstring)."""
    if baseurl:
        get_kit = f"{baseurl}/{KIT_DIR}/{kit_name}"
        alone = f'"%pip install {baseurl}/{KIT_DIR}/{wheel_name} matplotlib jupyterquiz"'
    else:
        get_kit = f"{kit_name}, from the book's Start page (section Run it yourself)"
        alone = "None"
    return f"""\
# Set-up check, added to the notebooks you download from the book: if the softgrad package is
# missing from this kernel, it says what to install, instead of an error further down.
def _softgrad_setup_check():
    import importlib.util
    import pathlib
    import sys

    if importlib.util.find_spec("softgrad") is not None:
        return
    msg = ["softgrad is not installed for the Python that runs this notebook:", "    " + sys.executable, ""]
    here = pathlib.Path.cwd().resolve()
    kits = [d for d in (here, *here.parents) if (d / "requirements.txt").is_file() and any(d.glob("softgrad-*.whl"))]
    if kits:
        kit = kits[0]
        msg += [
            "This notebook is in the course kit at " + str(kit) + ". In a terminal, in that folder, run",
            "    python3 -m venv .venv && .venv/bin/pip install -r requirements.txt          (Linux, macOS)",
            "    py -m venv .venv && .venv\\\\Scripts\\\\pip install -r requirements.txt          (Windows)",
            "then start JupyterLab with .venv/bin/jupyter lab (Windows: .venv\\\\Scripts\\\\jupyter lab).",
            "Or install it into this kernel: %pip install " + str(next(kit.glob("softgrad-*.whl"))) + " matplotlib jupyterquiz",
        ]
    else:
        msg += [
            "It comes with the course kit: {get_kit}.",
            "Unzip it and follow its README.md (two commands: make a venv and pip install -r requirements.txt).",
        ]
        if {alone}:
            msg += ["Or install it into this kernel: " + {alone}]
    msg += ["In a clone of the book's repository: make venv (or pip install -e .), then pick the .venv kernel."]

    class SoftgradNotInstalled(Exception):
        def _render_traceback_(self):  # IPython shows these lines instead of a traceback
            return msg

    raise SoftgradNotInstalled("\\n".join(msg))


_softgrad_setup_check()
del _softgrad_setup_check
"""


# --------------------------------------------------------------------------- notebooks


def _page_notebook(app, docname: str):
    """The notebook of page ``docname`` before conversion, and whether its page offers it."""
    import nbformat

    source = Path(app.env.doc2path(docname))
    if source.suffix == ".ipynb":
        return nbformat.read(source, as_version=4), True
    if "kernelspec" in app.env.metadata.get(docname, {}):
        executed = Path(app.outdir).parent / "jupyter_execute" / f"{docname}.ipynb"
        if not executed.is_file():
            raise ConversionError(f"{docname}: myst-nb wrote no executed notebook {executed}")
        return _with_outputs(app, nbformat.read(executed, as_version=4), docname), True
    nb = nbformat.v4.new_notebook()
    text = source.read_text(encoding="utf-8")
    nb.cells = [nbformat.v4.new_markdown_cell(text, id=re.sub(r"\W", "-", docname)[-60:])]
    return nb, False


def _with_outputs(app, nb, docname: str):
    """``nb`` with its outputs from the execution cache.

    myst-nb writes ``jupyter_execute/<page>.ipynb`` from the notebook as read, and only a fresh
    execution fills that one in: on a cache hit the outputs go to the page but not to the file
    (myst-nb 1.4, ``sphinx_.py``). The cache has them either way.
    """
    from jupyter_cache import get_cache

    cache_path = app.config.nb_execution_cache_path
    if app.config.nb_execution_mode != "cache" or not cache_path:
        return nb
    try:
        _, merged = get_cache(cache_path).merge_match_into_notebook(nb)
    except KeyError:
        if any(c.get("outputs") for c in nb.cells if c.cell_type == "code"):
            return nb
        raise ConversionError(f"{docname}: no outputs, and no match in the execution cache")
    return merged


_HIDE = {
    "hide-input": ("source_hidden",),
    "hide-output": ("outputs_hidden",),
    "hide-cell": ("source_hidden", "outputs_hidden"),
}


def convert_notebook(app, docname: str, nb, md, wheel_name: str, kit_name: str):
    """``nb`` (a page's notebook) converted for plain Jupyter, as a new notebook."""
    import nbformat

    nb = copy.deepcopy(nb)
    resolver = BookResolver(app, docname)
    for i, cell in enumerate(nb.cells, 1):
        cell.metadata.pop("execution", None)
        if cell.cell_type == "markdown":
            where = f"{app.env.doc2path(docname)} (Markdown cell {i})"
            cell.source = Converter(resolver, where=where, md=md).convert(cell.source)
        elif cell.cell_type == "code":
            for tag in cell.metadata.get("tags", []):
                for key in _HIDE.get(tag, ()):
                    cell.metadata.setdefault("jupyter", {})[key] = True
    for key in ("source_map", "jupytext", "mystnb"):
        nb.metadata.pop(key, None)
    if any(c.cell_type == "code" for c in nb.cells):
        setup = nbformat.v4.new_code_cell(
            setup_cell_source(resolver.baseurl, wheel_name, kit_name), id=SETUP_ID
        )
        setup.metadata["tags"] = [SETUP_ID]
        nb.cells.insert(0, setup)
    nb.nbformat, nb.nbformat_minor = 4, max(nb.get("nbformat_minor", 5), 5)
    for i, cell in enumerate(nb.cells):  # nbformat 4.5 wants cell ids (myst-nb's have none)
        cell.setdefault("id", f"cell-{i}")
    nbformat.validate(nb)
    return nb


def _wheel(app) -> Path:
    from importlib import metadata

    version = metadata.version("softgrad")
    wheel = Path(app.srcdir) / "dist" / f"softgrad-{version}-py3-none-any.whl"
    if not wheel.is_file():
        raise ConversionError(f"no wheel {wheel}: run `make dist` (make book does)")
    _check_wheel_is_current(wheel)
    return wheel


def _check_wheel_is_current(wheel: Path) -> None:
    """Warn when the wheel's modules differ from the softgrad that executed the book."""
    import importlib.util

    spec = importlib.util.find_spec("softgrad")
    root = Path(next(iter(spec.submodule_search_locations)))
    with zipfile.ZipFile(wheel) as zf:
        packed = {n: zf.read(n) for n in zf.namelist() if n.endswith(".py")}
    here = {
        "softgrad/" + p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.py")
    }
    stale = sorted(n for n in set(packed) | set(here) if packed.get(n) != here.get(n))
    if stale:
        logger.warning(
            "%s was built from other sources than %s (differs in %s): run `make dist`",
            wheel,
            root,
            ", ".join(stale[:5]),
            type="softgrad",
            subtype="kit",
        )


def export_notebooks(app, exception) -> None:
    """build-finished: converted notebooks into ``_sources/`` and the kit into ``kit/``."""
    # Only the site (builder "html") carries the kit; the single-page build that `make pdf` prints
    # has no use for it.
    if exception is not None or app.builder.name != "html":
        return
    import nbformat
    from softgrad.kit import KIT_ZIP, write_kit

    try:
        wheel = _wheel(app)
        md = myst_parser_for(app.env.myst_config)
        outdir = Path(app.outdir)
        notebooks = {}
        for docname in sorted(app.env.found_docs):
            nb, offered = _page_notebook(app, docname)
            nb = convert_notebook(app, docname, nb, md, wheel.name, KIT_ZIP)
            data = nbformat.writes(nb).encode("utf-8")
            notebooks[f"{docname}.ipynb"] = data
            if offered:
                target = outdir / "_sources" / f"{docname}.ipynb"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        baseurl = (app.config.html_baseurl or "").rstrip("/")
        root = app.config.root_doc
        written = write_kit(
            outdir / KIT_DIR, notebooks, wheel, f"{baseurl}/{root}.html" if baseurl else None
        )
    except ConversionError as exc:
        logger.warning("%s", exc, type="softgrad", subtype="kit")
        return
    kit = written["kit"]
    digest = hashlib.sha256(kit.read_bytes()).hexdigest()[:12]
    logger.info(
        "course kit: %s (%d notebooks, %d KiB, sha256 %s...)",
        kit.relative_to(outdir),
        len(notebooks),
        kit.stat().st_size // 1024,
        digest,
    )


# --------------------------------------------------------------------------- the pages


def offer_notebook(app, pagename, templatename, context, doctree):
    """html-page-context (before the theme's buttons): the .ipynb entry of the download menu."""
    if doctree is None or context.get("page_source_suffix") != ".md":
        return
    if "kernelspec" in app.env.metadata.get(pagename, {}):
        context["ipynb_source"] = f"{pagename}.ipynb"  # written by export_notebooks


def offer_kit(app, pagename, templatename, context, doctree):
    """html-page-context (after the theme's buttons): the course kit in every download menu."""
    from softgrad.kit import KIT_ZIP

    for group in context.get("header_buttons", []):
        if group.get("label") == "download-buttons":
            group["buttons"].append(
                {
                    "type": "link",
                    "url": f"{context['pathto'](KIT_DIR, 1)}/{KIT_ZIP}",
                    "text": "course kit (.zip)",
                    "tooltip": "Every notebook, the softgrad wheel and how to install them",
                    "icon": "fas fa-file-archive",
                    "label": "download-kit-button",
                }
            )


def kit_filename(name: str) -> str:
    """``{kit}`` names a file of the site's ``kit/``; ``wheel`` is the wheel, whatever its version."""
    from importlib import metadata

    name = name.strip()
    return f"softgrad-{metadata.version('softgrad')}-py3-none-any.whl" if name == "wheel" else name


class _KitLink(nodes.General, nodes.Inline, nodes.Element):
    pass


def kit_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{kit}`file```: a link to ``kit/<file>`` of the built site (the kit, the wheel, sums)."""
    filename = kit_filename(text)
    node = _KitLink(rawtext, filename=filename)
    node += nodes.literal(filename, filename)
    return [node], []


def _visit_kit_link(self, node):
    from sphinx.util.osutil import relative_uri

    here = self.builder.get_target_uri(self.builder.current_docname)
    href = relative_uri(here, f"{KIT_DIR}/{node['filename']}")
    self.body.append(f'<a class="reference external softgrad-kit" href="{href}">')


def _depart_kit_link(self, node):
    self.body.append("</a>")


class IpynbLinks(SphinxPostTransform):
    """A Markdown link to a page's notebook (``../../../chapters/01_softmax.ipynb``) is that page.

    The released exercises link to chapters that way, so that the same link works in the book and,
    unchanged, in the kit (where the chapter is a notebook at that path): the grader compares an
    exercise's locked cells with the released ones, so the kit may not rewrite them. Runs just
    before myst-parser's resolver (priority 9), which then treats the link as a link to a page.
    """

    default_priority = 8

    def run(self, **kwargs) -> None:
        for node in self.document.findall(addnodes.pending_xref):
            target = node.get("reftarget", "")
            path, _, anchor = target.partition("#")
            if (
                node.get("reftype") != "myst"
                or node.get("refdomain")
                or not path.endswith(".ipynb")
            ):
                continue
            refdoc = node.get("refdoc", self.env.docname)
            doc = posixpath.normpath(posixpath.join(posixpath.dirname(refdoc), path))[:-6]
            if doc in self.env.all_docs:
                node["refdomain"], node["reftarget"] = "doc", doc
                node["reftargetid"] = anchor or None


def setup(app):
    app.add_node(
        _KitLink,
        html=(_visit_kit_link, _depart_kit_link),
        latex=(lambda s, n: None, lambda s, n: None),
        text=(lambda s, n: None, lambda s, n: None),
    )
    app.add_role("kit", kit_role)
    app.add_post_transform(IpynbLinks)
    app.connect("html-page-context", offer_notebook, priority=400)
    app.connect("html-page-context", offer_kit, priority=600)
    app.connect("build-finished", export_notebooks)
