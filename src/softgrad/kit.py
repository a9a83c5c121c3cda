"""The course kit: one zip a student unzips and installs with two commands.

The book's build (``chapters/_ext``) calls :func:`write_kit` with the notebooks it converted for
plain Jupyter; ``make release`` calls :func:`assignment_zips` (``python -m softgrad.kit
assignments KIT.zip --out DIR``) to cut the same kit into one zip per assignment for an LMS.

A kit holds every page of the book as a notebook at its page's path (``chapters/01_softmax.ipynb``,
``exercises/release/ex01_stable_softmax/ex01_stable_softmax.ipynb``, so relative links between
pages work inside it), the softgrad wheel, a ``requirements.txt`` pinned to the environment that
built the book (softgrad from the wheel next to it), and a README with the commands. Zips are
written with fixed dates and sorted names: the same inputs give the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

KIT_NAME = "softgrad-course-kit"
KIT_ZIP = f"{KIT_NAME}.zip"
# What the notebooks import or need to be opened, besides softgrad and its own dependencies.
KIT_ROOTS = ("numpy", "matplotlib", "jupyterlab", "ipykernel", "jupyterquiz")
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)


class KitError(RuntimeError):
    """A kit that cannot be built or split, with the reason (reported without a traceback)."""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- requirements


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def pinned_requirements(roots: Iterable[str] = KIT_ROOTS, wheel: str | None = None) -> str:
    """A requirements file pinning ``roots`` and everything they need, as installed here.

    Versions are those of this environment (the one that built the book). A package needed only
    on some platforms keeps its environment marker (``appnope ; sys_platform == "darwin"``); one
    that this platform does not need is left to pip, unpinned. ``wheel`` (a path relative to the
    file, e.g. ``./softgrad-0.1.0-py3-none-any.whl``) is listed first, with softgrad's own
    dependencies pinned like the rest.
    """
    from importlib import metadata

    from packaging.requirements import Requirement

    markers: dict[str, set[str | None]] = {}  # package -> the markers under which it is needed
    versions: dict[str, str] = {}
    todo: list[tuple[str, str | None]] = [(r, None) for r in roots]
    if wheel is not None:
        todo += [(r, None) for r in _requires("softgrad")]
    while todo:
        spec, via = todo.pop()
        req = Requirement(spec)
        name = _canonical(req.name)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue  # needed on another platform only: pip resolves it there
        seen = markers.setdefault(name, set())
        if via in seen or None in seen:
            continue
        seen.add(via)
        versions[name] = dist.version
        for child in dist.requires or []:
            creq = Requirement(child)
            marker = str(creq.marker) if creq.marker else None
            if marker and "extra" in marker:
                continue  # optional extras are not installed by a plain requirement
            todo.append((str(Requirement(creq.name)), _and(via, marker)))
    lines = [
        "# softgrad and what the course notebooks need, pinned to the versions that built the book.",
        "# Install with: pip install -r requirements.txt   (run it in this folder)",
    ]
    if wheel is not None:
        lines.append(wheel)
    for name in sorted(versions):
        if name == "softgrad":
            continue
        conds = markers[name]
        line = f"{name}=={versions[name]}"
        if None not in conds:
            line += " ; " + " or ".join(f"({c})" for c in sorted(c for c in conds if c))
        lines.append(line)
    return "\n".join(lines) + "\n"


def _requires(dist_name: str) -> list[str]:
    from importlib import metadata

    from packaging.requirements import Requirement

    out = []
    for spec in metadata.distribution(dist_name).requires or []:
        req = Requirement(spec)
        if not (req.marker and "extra" in str(req.marker)):
            out.append(str(Requirement(req.name)))
    return out


def _and(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    return f"({a}) and ({b})"


# --------------------------------------------------------------------------- README


def kit_readme(wheel_name: str, book_url: str | None) -> str:
    where = f"The book: {book_url}\n\n" if book_url else ""
    return f"""# softgrad course kit

The chapters and exercises of the book *softgrad: gradients through softmax and cross-entropy*, as
Jupyter notebooks, with the `softgrad` package they import ({wheel_name}).

{where}## Install (once)

You need Python 3.11 or newer. In a terminal, in this folder (the one with this README):

Linux and macOS:

```sh
python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
.venv/bin/jupyter lab
```

Windows (PowerShell or cmd):

```bat
py -m venv .venv && .venv\\Scripts\\pip install -r requirements.txt
.venv\\Scripts\\jupyter lab
```

The first command makes a virtual environment in `.venv` and installs softgrad from the wheel in this
folder, with the versions of NumPy, Matplotlib and JupyterLab that the book was built with (they come
from the package index, so it needs the network once). The second starts JupyterLab; later, only the
second command is needed.

## What is where

- `chapters/`: the chapters, `00_start_here.ipynb` first. Every cell's output is already there; run
  the cells to compute them yourself.
- `exercises/release/<exercise>/<exercise>.ipynb`: the graded exercises. Write your code where it
  says `YOUR CODE HERE`; the `check_...` cells tell you what is wrong.
- `requirements.txt`, `{wheel_name}`: what the first command installs.

Every notebook starts with a cell that checks that `softgrad` is installed and, if it is not, says
what to run instead of failing further down. Links between the notebooks work when they stay in this
folder.
"""


# --------------------------------------------------------------------------- zips


def write_zip(path: Path, files: Mapping[str, bytes], root: str = KIT_NAME) -> None:
    """``files`` (relative path -> bytes) under the folder ``root`` of a new zip at ``path``.

    Fixed dates and sorted names, so equal inputs give byte-identical zips.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in sorted(files):
            rel = PurePosixPath(name)
            if rel.is_absolute() or ".." in rel.parts:
                raise KitError(f"kit entry {name!r} must be a relative path inside the kit")
            info = zipfile.ZipInfo(f"{root}/{rel}", date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, files[name])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)


def write_kit(
    out_dir: Path,
    notebooks: Mapping[str, bytes],
    wheel: Path,
    book_url: str | None = None,
) -> dict[str, Path]:
    """Write the kit zip, a copy of the wheel and ``SHA256SUMS`` into ``out_dir``.

    ``notebooks`` maps a kit path (``chapters/01_softmax.ipynb``) to the notebook's bytes.
    Returns the written files by name.
    """
    if not wheel.is_file():
        raise KitError(f"no wheel at {wheel}: run `make dist` first")
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel_copy = out_dir / wheel.name
    wheel_copy.write_bytes(wheel.read_bytes())
    files = dict(notebooks)
    files["README.md"] = kit_readme(wheel.name, book_url).encode()
    files["requirements.txt"] = pinned_requirements(wheel=f"./{wheel.name}").encode()
    files[wheel.name] = wheel.read_bytes()
    kit = out_dir / KIT_ZIP
    write_zip(kit, files)
    sums = out_dir / "SHA256SUMS"
    sums.write_text(
        "".join(f"{sha256(p)}  {p.name}\n" for p in (wheel_copy, kit)), encoding="utf-8"
    )
    return {"kit": kit, "wheel": wheel_copy, "sums": sums}


def assignment_zips(kit: Path, out_dir: Path) -> list[Path]:
    """One zip per exercise: the kit with that exercise only (chapters, wheel, README kept)."""
    if not kit.is_file():
        raise KitError(f"no course kit at {kit}: run `make book` first")
    with zipfile.ZipFile(kit) as zf:
        files = {
            PurePosixPath(n).relative_to(KIT_NAME).as_posix(): zf.read(n)
            for n in zf.namelist()
            if not n.endswith("/")
        }
    exercises = sorted(
        {PurePosixPath(n).parts[2] for n in files if n.startswith("exercises/release/")}
    )
    if not exercises:
        raise KitError(f"{kit} holds no exercises/release/<assignment>/ notebooks")
    written = []
    for name in exercises:
        keep = {
            n: b
            for n, b in files.items()
            if not n.startswith("exercises/") or PurePosixPath(n).parts[2] == name
        }
        path = out_dir / f"{name}.zip"
        write_zip(path, keep, root=name)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m softgrad.kit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("assignments", help="one zip per assignment, cut from the course kit")
    a.add_argument("kit", type=Path, help="the course kit zip (in the built book: kit/)")
    a.add_argument("--out", type=Path, default=Path("dist/assignments"))
    args = parser.parse_args(argv)
    try:
        for path in assignment_zips(args.kit, args.out):
            print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    except KitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
