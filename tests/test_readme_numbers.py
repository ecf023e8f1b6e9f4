"""The README's notation key is gpviz's own, and every number in it is written by scripts/readme_numbers.py."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gpviz.tree.notation import NOTATION

REPO = Path(__file__).resolve().parent.parent
TEXT = (REPO / "README.md").read_text(encoding="utf-8")


def test_readme_lists_the_whole_notation_key():
    for name, line in NOTATION.items():
        assert f"- {line}" in TEXT, f"README's notation key lacks {name!r}"


def test_readme_page_sizes_and_results_sit_in_script_markers():
    marked = set(re.findall(r"<!-- n:([a-z_0-9]+) -->", TEXT))
    assert {"model_kb", "sweep_kb", "priors_kb", "fit_kb", "prior_ratios", "demo_time"} <= marked
    # no size or timing outside the markers in the limitations
    limits = TEXT[TEXT.index("## Known limitations"):]
    bare = re.sub(r"<!-- n:[a-z_0-9]+ -->.*?<!-- /n -->", "", limits, flags=re.S)
    assert not re.search(r"\b\d+ KB\b|\b\d+ min\b|\b\d+ s\b", bare), bare


def test_readme_numbers_script_recomputes_from_a_demo_folder(tmp_path):
    demo = tmp_path / "demo"
    demo.mkdir()
    for name, size in (("model.html", 12_000), ("sweep.html", 34_000), ("priors.html", 56_000), ("fit.html", 78_000)):
        (demo / name).write_bytes(b"x" * size)
    (demo / "priors_scores.csv").write_text("size,label,low,center,high,n_ok,ratio_to_first\n"
                                            "8,a,1,1,1,4,1.0\n8,b,1,1,1,4,0.5\n16,a,1,1,1,4,1.0\n"
                                            "16,b,1,1,1,4,0.25\n")
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "readme_numbers.py"), "--demo-dir", str(demo),
                          "--check"], capture_output=True, text=True)
    assert "model_kb: 12 KB" in out.stdout and "fit_kb: 78 KB" in out.stdout
    assert "prior_ratios: 0.50× at n = 8, 0.25× at n = 16" in out.stdout
    assert out.returncode == 1  # the README states other numbers: stale against this folder


@pytest.mark.slow
def test_readme_numbers_agree_with_a_real_demo_run():
    """CI runs the whole demo: every page size and prior ratio the README states is this run's, its time within 10x."""
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "readme_numbers.py"), "--check"],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "prior_ratios: " in out.stdout and "demo_time: " in out.stdout


def test_check_takes_sizes_exactly_and_times_within_a_factor(capsys):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import readme_numbers
    finally:
        sys.path.remove(str(REPO / "scripts"))
    text = ("<!-- n:model_kb -->33 KB<!-- /n --> <!-- n:demo_time -->97 s<!-- /n --> "
            "<!-- n:demo_load -->3–5<!-- /n -->")
    assert readme_numbers.stale(text, {"model_kb": "33 KB", "demo_time": "900 s", "demo_load": "0.1"}) == []
    assert readme_numbers.stale(text, {"model_kb": "34 KB", "demo_time": "97 s"}) == ["model_kb"]
    assert "stale: model_kb: README says '33 KB', this run '34 KB'" in capsys.readouterr().out
    assert readme_numbers.stale(text, {"model_kb": "33 KB", "demo_time": "1000 s"}) == ["demo_time"]
    assert readme_numbers.stale(text, {"model_kb": "33 KB", "demo_time": "9 s"}) == ["demo_time"]
