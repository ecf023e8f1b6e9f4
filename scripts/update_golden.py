"""Rewrites the golden page under tests/golden/ after a deliberate change of what a page holds.

Run it in float64 like the tests (``python scripts/update_golden.py``), then read the
diff of ``tests/golden/`` before committing: the test that compares the page never
writes it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.golden_pages import GOLDEN, golden_figure  # noqa: E402


def main() -> None:
    torch.set_default_dtype(torch.float64)  # as tests/conftest.py runs every test
    GOLDEN.parent.mkdir(exist_ok=True)
    text = golden_figure().fragment()
    old = GOLDEN.read_text(encoding="utf-8") if GOLDEN.exists() else None
    GOLDEN.write_text(text, encoding="utf-8")
    print(f"{GOLDEN}: {'unchanged' if old == text else 'rewritten'} ({len(text):,} characters)")


if __name__ == "__main__":
    main()
