"""The ``gpviz`` command: bad options fail cleanly (exit 2), and ``gpviz demo --quick`` writes pages that load."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gpviz
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
    proc = subprocess.run(_console_script() + ["demo", "--quick", "--workers", "2", "--out", str(out), "--no-progress"],
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


def _settings(tmp_path):
    from gpviz.cli import Settings

    return Settings(out=tmp_path, sizes=(6, 10), repeats=2, seed=0, fit_size=8, modes_size=6)


def test_a_failing_step_is_reported_and_the_tour_goes_on(tmp_path):
    from gpviz.cli import Tour, index_html

    said = []
    tour = Tour(_settings(tmp_path), said.append)

    def boom():
        raise RuntimeError("the <b>fit</b> broke")

    assert tour.run_step("fit", boom) is False
    assert tour.run_step("sweep", lambda: tour.add("sweep", tmp_path / "sweep.html", "ok page")) is True
    assert any("step 'fit' failed: RuntimeError: the <b>fit</b> broke" in s for s in said)
    page = index_html(tour)
    # the error is shown, escaped; the page of the next step is linked
    assert 'class="failed"' in page and "the &lt;b&gt;fit&lt;/b&gt; broke" in page and "<b>fit</b>" not in page
    assert 'href="sweep.html"' in page


def test_index_escapes_what_it_prints(tmp_path):
    from gpviz.cli import Tour, index_html

    tour = Tour(_settings(tmp_path), lambda s: None)
    evil = "</li><script>window.__pwned=1</script>"
    tour.add("model", tmp_path / 'a"b.html', evil)
    page = index_html(tour)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert 'href="a&quot;b.html"' in page


def test_settings_defaults_and_quick():
    from gpviz.cli import DEFAULT_REPEATS, DEFAULT_SIZES, QUICK_SIZES, build_parser, settings_from

    s = settings_from(build_parser().parse_args(["demo"]))
    # the defaults the README documents ("Options: `--sizes 8 16 24 32 40`, `--repeats 4`, `--seed 0`"),
    # written out here so that a changed default fails until the README says it too
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    documented = re.search(r"`--sizes ([\d ]+)`,\s+`--repeats (\d+)`, `--seed (\d+)`", readme)
    assert documented, "the README no longer documents the demo's defaults"
    assert s.sizes == tuple(int(v) for v in documented.group(1).split()) == DEFAULT_SIZES == (8, 16, 24, 32, 40)
    assert s.repeats == int(documented.group(2)) == DEFAULT_REPEATS == 4 and s.seed == int(documented.group(3))
    assert s.maxiter == 100 and s.threads == 1
    assert s.data_size >= 2 * max(DEFAULT_SIZES)
    q = settings_from(build_parser().parse_args(["demo", "--quick", "--sizes", "9", "5", "9", "--maxiter", "0"]))
    assert q.sizes == (5, 9) and q.maxiter is None and q.sweep_fit_kwargs == {}
    assert settings_from(build_parser().parse_args(["demo", "--quick"])).sizes == QUICK_SIZES
    assert s.workers == 1 and settings_from(build_parser().parse_args(["demo", "--workers", "2"])).workers == 2


def test_the_printed_parameter_table_names_parameters_by_their_page_labels():
    from botorch.models import SingleTaskGP

    from gpviz.cli import parameter_table

    X = torch.rand(8, 2, dtype=torch.float64)
    model = SingleTaskGP(X, X.sum(-1, keepdim=True))
    params = gpviz.parameters(model, ["log_learning_rate", "momentum"], long=True)
    table = parameter_table(params)
    header, *rows = table.splitlines()
    assert header.split()[:2] == ["parameter", "value"]
    names = [r.split()[0] for r in rows]
    assert "lengthscale[log_learning_rate]" in names and "lengthscale[momentum]" in names
    assert "covar_module.lengthscale[0]" not in table  # the raw key stays in the CSV
    assert names == list(params["label"])  # every row is named as its page names it


def test_the_demo_seeds_each_step_and_gives_the_callers_generator_back(tmp_path, monkeypatch):
    from gpviz.cli import Tour, run_demo

    draws = []
    monkeypatch.setattr(Tour, "run_step", lambda self, name, fn: draws.append(float(torch.rand(()))) or True)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    run_demo(_settings(tmp_path), lambda s: None)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's stream goes on as if nothing ran
    # each step draws the same first number: seeded with the tour's seed, whatever ran before it
    assert len(draws) > 1 and len(set(draws)) == 1
    assert draws[0] == float(torch.rand((), generator=torch.Generator().manual_seed(0)))
