"""Packaging: every lower bound in pyproject.toml is pinned in the oldest-versions CI job, and vice versa."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bounds() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    out = {}
    for d in deps:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(>=|==)\s*([0-9][0-9A-Za-z.]*)", d.strip())
        assert m, f"dependency {d!r} has no lower bound (>= or ==)"
        out[m.group(1).lower()] = m.group(3)
    return out


def _pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "scripts" / "oldest-constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            out[name.strip().lower()] = version.strip()
    return out


def _same(a: str, b: str) -> bool:
    pad = lambda v: [int(x) for x in v.split(".")] + [0] * (3 - len(v.split(".")))  # noqa: E731 - 2.13 == 2.13.0
    return pad(a) == pad(b)


def test_every_lower_bound_is_the_version_the_oldest_job_installs():
    bounds, pins = _bounds(), _pins()
    assert set(bounds) == set(pins), (sorted(bounds), sorted(pins))
    wrong = {k: (bounds[k], pins[k]) for k in bounds if not _same(bounds[k], pins[k])}
    assert not wrong, wrong


def test_ci_runs_the_oldest_job():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "test-oldest" in ci and "scripts/run.sh test" in ci
