"""The book's figure style: colours a colour-blind reader can tell apart, and never colour alone.

Every chapter calls :func:`use_book_style` once before it draws. It sets matplotlib's colour cycle
to the Okabe-Ito palette (distinguishable with the common forms of colour blindness, and in grey)
and pairs each colour with its own line style, so two curves differ in dash pattern as well as in
hue. Plots of points use :data:`MARKERS` in the same order, one marker shape per class.

matplotlib is imported only when :func:`use_book_style` runs; the rest of softgrad does not need it.

Examples
--------
>>> from softgrad.plotting import PALETTE, LINESTYLES, MARKERS
>>> len(PALETTE) == len(LINESTYLES) == len(MARKERS)
True
>>> PALETTE[0]
'#0072B2'
"""

from __future__ import annotations

__all__ = ["LINESTYLES", "MARKERS", "PALETTE", "use_book_style"]

#: Okabe and Ito's palette (Color Universal Design), darkest-contrast colours first; black last.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000")

#: One dash pattern per colour of :data:`PALETTE`, in the same order.
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 2)), (0, (1, 1)))

#: One marker shape per colour of :data:`PALETTE`, in the same order.
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def use_book_style() -> None:
    """Set matplotlib's defaults for the book: palette, paired line styles, readable sizes."""
    import matplotlib as mpl
    from cycler import cycler

    mpl.rcParams.update(
        {
            "axes.prop_cycle": cycler(color=list(PALETTE)) + cycler(linestyle=list(LINESTYLES)),
            "image.cmap": "cividis",
            "axes.grid": False,
            "legend.frameon": False,
            "font.size": 10,
        }
    )
