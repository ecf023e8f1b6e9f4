"""docs/architecture.md's figures of the house are the ones scripts/house_figures.py measures now."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("house_figures", REPO / "scripts" / "house_figures.py")
house_figures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(house_figures)


def test_the_script_rewrites_only_what_sits_between_markers():
    text = "edges: <!-- n:import_edges -->203<!-- /n -->, cycles <!-- n:cycles -->1<!-- /n --> (said 203)"
    new, missing = house_figures.apply(text, {"import_edges": "289", "cycles": "0"})
    assert new == "edges: <!-- n:import_edges -->289<!-- /n -->, cycles <!-- n:cycles -->0<!-- /n --> (said 203)"
    assert missing == []
    assert house_figures.apply(text, {"cycles": "0"})[1] == ["import_edges"]


def test_the_architecture_doc_states_the_figures_of_this_checkout():
    values, _ = house_figures.figures(REPO)
    doc = REPO / house_figures.DOC
    text = doc.read_text(encoding="utf-8")
    new, missing = house_figures.apply(text, values)
    assert not missing, f"markers in {doc} the script does not compute: {missing}"
    assert set(values) <= {m.group("name") for m in house_figures.MARK.finditer(text)}, "a figure without its marker"
    assert new == text, "docs/architecture.md's figures are stale: run .venv/bin/python scripts/house_figures.py --write"
