"""softgrad: softmax and cross-entropy, with their gradients.

A small, exact numeric core for the book *How gradients flow through softmax and
cross-entropy*. Every function works along ``axis`` (default -1) over any batch shape, keeps
float16/32/64 (integers become float64), and never forms an (n, n) matrix unless asked to
(:func:`softmax_jacobian`).

- :func:`logsumexp`, :func:`softmax`, :func:`log_softmax` -- Chapter 1 (sec-softmax)
- :func:`softmax_jacobian`, :func:`softmax_jvp` -- Chapter 2 (sec-softmax-jacobian)
- :func:`softmax_vjp` -- Chapter 3 (sec-softmax-backprop)
- :func:`cross_entropy`, :func:`cross_entropy_grad`, :func:`cross_entropy_with_grad`
  -- Chapter 4 (sec-cross-entropy)
- :func:`numerical_jacobian`, :func:`gradcheck` -- Chapter 5 (sec-gradient-checking)
- :func:`linear_cross_entropy`, :func:`linear_cross_entropy_with_grad` -- Chapter 8
  (sec-linear-cross-entropy)
- :func:`set_num_threads`, :func:`get_num_threads` -- how many threads large inputs use

The code lives in private modules named for what they hold (``_softmax.py``, ``_losses.py``,
``_gradcheck.py``), so that ``softgrad.softmax`` is the function; ``_rows.py`` is the driver
under them all (row blocks, threads, ``out=``) and ``_validation.py`` holds every input check.
"""

from softgrad._gradcheck import GradcheckResult, gradcheck, numerical_jacobian
from softgrad._linear import linear_cross_entropy, linear_cross_entropy_with_grad
from softgrad._losses import cross_entropy, cross_entropy_grad, cross_entropy_with_grad
from softgrad._parallel import get_num_threads, set_num_threads
from softgrad._softmax import (
    log_softmax,
    logsumexp,
    softmax,
    softmax_jacobian,
    softmax_jvp,
    softmax_vjp,
)

__version__ = "0.1.0"

__all__ = [
    "GradcheckResult",
    "cross_entropy",
    "cross_entropy_grad",
    "cross_entropy_with_grad",
    "get_num_threads",
    "gradcheck",
    "linear_cross_entropy",
    "linear_cross_entropy_with_grad",
    "log_softmax",
    "logsumexp",
    "numerical_jacobian",
    "set_num_threads",
    "softmax",
    "softmax_jacobian",
    "softmax_jvp",
    "softmax_vjp",
]
