"""The ``gpviz`` command: bad options fail cleanly (exit 2), and ``gpviz demo --quick`` writes pages that load."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gpviz.cli import main

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("argv, message", [
    (["demo", "--sizes", "2"], "expected an integer >= 3, got 2"),
    (["demo", "--sizes", "ten"], "expected an integer >= 3, got 'ten'"),
    (["demo", "--repeats", "0"], "expected an integer >= 1, got 0"),
    (["demo", "--seed", "-1"], "expected an integer >= 0, got -1"),
    (["demo", "--sizes", "500"], "at most 200 points per sweep cell in the demo, got 500"),
    (["demo", "--bogus"], "unrecognized arguments: --bogus"),
    (["dmeo"], "invalid choice: 'dmeo'"),
])
def test_bad_options_exit_2_with_a_clear_message(argv, message, capsys, tmp_path):
    assert main(argv + ["--out", str(tmp_path / "out")] if argv[0] == "demo" else argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("gpviz: error:")
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing was run


def test_out_that_is_a_file_is_rejected(tmp_path, capsys):
    f = tmp_path / "a-file"
    f.write_text("x")
    assert main(["demo", "--out", str(f)]) == 2
    assert f"{str(f)!r} exists and is not a folder" in capsys.readouterr().err


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_python_dash_m_reports_bad_options_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "gpviz", "demo", "--repeats", "x"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert "expected an integer >= 1, got 'x'" in proc.stderr and "Traceback" not in proc.stderr


def test_version():
    proc = subprocess.run([sys.executable, "-m", "gpviz", "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("gpviz ")


def _console_script() -> list[str]:
    exe = Path(sys.executable).with_name("gpviz")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "gpviz"]


@pytest.mark.slow
@pytest.mark.browser
def test_quick_demo_end_to_end_pages_load_without_errors(tmp_path, open_page):
    out = tmp_path / "tour"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(_console_script() + ["demo", "--quick", "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    # it prints where things are
    assert f"open {(out / 'index.html').resolve()}" in proc.stdout
    for name in ("model.html", "fit.html", "sweep.html", "priors.html", "fit_modes.html", "index.html",
                 "scaling_curve.png", "fit_loss.png", "fit_modes.png", "sweep_scores.csv"):
        assert (out / name).stat().st_size > 0, name
        assert str(out / name) in proc.stdout, name
    # the printed expression names the features
    assert "compare('log_learning_rate')" in proc.stdout

    index = (out / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]+)"', index)
    assert 'class="failed"' not in index
    for link in links:
        assert (out / link).exists(), link
    pages = sorted(out.glob("*.html"))
    assert {p.name for p in pages} <= set(links) | {"index.html"}
    for p in pages:
        loaded = open_page(p, screenshot=f"demo_{p.stem}.png")
        assert loaded.console_errors == [], (p.name, loaded.console_errors)
        if p.name in ("model.html", "fit.html", "sweep.html", "priors.html"):
            # every figure mounted and drew its parameters (a dot or mark per placeholder)
            n_fig = loaded.eval("document.querySelectorAll('.gpviz-figure').length")
            assert n_fig >= 1, p.name
            n_svg = loaded.eval("document.querySelectorAll('.gpviz-figure svg, .gpviz-figure canvas').length")
            assert n_svg > 0, p.name
