"""Shared test configuration.

Hypothesis profiles: "ci" (the default) is derandomized, so a run is reproducible and a failure
in CI fails the same way on a laptop; "dev" explores more random examples. Choose with
``HYPOTHESIS_PROFILE=dev``. Example counts are modest because the suite runs on small shared
machines; the properties are cheap, so the counts can be raised locally when hunting a bug.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

# test helper modules (booktoc) import by name; pytest's importlib mode does not add tests/.
# chapters/_ext holds the book's converter for plain Jupyter (myst_to_jupyter), tested directly.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "chapters" / "_ext"))

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    max_examples=100,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=200,
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
