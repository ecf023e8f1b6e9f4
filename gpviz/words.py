"""Counted nouns in titles and sentences: "1 repeat", "3 repeats" (never "repeat(s)"); the one pluralizer."""

from __future__ import annotations


def noun(n: int, one: str, many: str | None = None) -> str:
    """The noun alone, agreeing with ``n``: ``noun(2, "lengthscale") == "lengthscales"``.

    Args:
        n: The count.
        one: The singular.
        many: The plural where it is irregular; otherwise ``one`` + "s" ("ies" after a consonant and "y").
    """
    if int(n) == 1:
        return one
    if many:
        return many
    if one.endswith("y") and one[-2:-1] not in ("", "a", "e", "i", "o", "u"):
        return one[:-1] + "ies"
    return one + "s"


def plural(n: int, one: str, many: str | None = None) -> str:
    """``plural(1, "run") == "1 run"``, ``plural(3, "run") == "3 runs"``, ``plural(2, "fold", "folds")``."""
    n = int(n)
    return f"{n} {noun(n, one, many)}"


__all__ = ["noun", "plural"]
