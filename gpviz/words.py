"""Counted nouns in titles: "1 repeat", "3 repeats" (never "repeat(s)")."""

from __future__ import annotations


def plural(n: int, one: str, many: str | None = None) -> str:
    """``plural(1, "run") == "1 run"``, ``plural(3, "run") == "3 runs"``, ``plural(2, "fold", "folds")``."""
    n = int(n)
    return f"{n} {one if n == 1 else (many or one + 's')}"


__all__ = ["plural"]
