"""Optional test dependencies: skipped on a developer's bare venv, a failure where the run says they must be there.

``bash scripts/run.sh test`` (what CI runs) installs every extra and sets
``GPVIZ_REQUIRE_EXTRAS=1``: a fully Bayesian or notebook test that cannot import what
it needs then fails, instead of skipping and leaving the suite green with a hole in it.
"""

from __future__ import annotations

import importlib
import os

import pytest

REQUIRE_ENV = "GPVIZ_REQUIRE_EXTRAS"


def required() -> bool:
    """Whether this run must have every extra (``run.sh test`` sets it)."""
    return bool(os.environ.get(REQUIRE_ENV))


def need(module: str, extra: str):
    """Imports ``module`` for a test; a missing one fails under ``run.sh test``, else skips.

    Args:
        module: The module to import (``"nbclient"``).
        extra: The extra of gpviz that installs it (``"test"``, ``"fully-bayesian"``), named in the message.

    Returns:
        The imported module.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        why = f"{module} is not installed (the `{extra}` extra of gpviz): {exc}"
        if required():
            pytest.fail(f"{why}; `bash scripts/run.sh test` installs every extra", pytrace=False)
        pytest.skip(why)
