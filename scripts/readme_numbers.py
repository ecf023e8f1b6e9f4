"""Regenerates every number the README states, from a run of the demo, and writes them into README.md.

Each number sits between ``<!-- n:NAME -->`` and ``<!-- /n -->`` markers in the
README; this script computes NAME from a folder written by ``gpviz demo`` (or runs
the demo, timing it) and replaces the text between the markers. Run it after any
change that moves a page size, a timing or a result:

    .venv/bin/python scripts/readme_numbers.py                 # runs the demo (a few minutes)
    .venv/bin/python scripts/readme_numbers.py --demo-dir DIR  # a demo folder already written
    .venv/bin/python scripts/readme_numbers.py --check         # exit 1 if the README is stale (CI runs this)

Numbers: page sizes of model.html, sweep.html, priors.html, fit.html (KB); the
looser prior's held-out MSE relative to the strong prior's per size
(priors_scores.csv); the demo's wall time and the machine's load when it ran.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
MARK = re.compile(r"<!-- n:(?P<name>[a-z_0-9]+) -->(?P<value>.*?)<!-- /n -->", re.S)


def page_kb(demo: Path, name: str) -> str:
    return f"{(demo / name).stat().st_size / 1000:.0f} KB"


def prior_ratios(demo: Path) -> str:
    """'0.84x at n = 16, 0.29x at n = 24, ...' from the demo's priors_scores.csv (second prior / first)."""
    import pandas as pd

    table = pd.read_csv(demo / "priors_scores.csv")
    first = table["label"].iloc[0]
    other = table[(table["label"] != first)].dropna(subset=["ratio_to_first"])
    return ", ".join(f"{r:.2f}× at n = {int(s)}" for s, r in zip(other["size"], other["ratio_to_first"]))


def numbers(demo: Path, seconds: float | None, load: str | None) -> dict[str, str]:
    out = {
        "model_kb": page_kb(demo, "model.html"),
        "sweep_kb": page_kb(demo, "sweep.html"),
        "priors_kb": page_kb(demo, "priors.html"),
        "fit_kb": page_kb(demo, "fit.html"),
        "prior_ratios": prior_ratios(demo),
    }
    if seconds is not None:
        out["demo_time"] = f"{seconds:.0f} s"
        out["demo_load"] = load or "unknown"
    return out


def run_demo(out: Path) -> tuple[float, str]:
    exe = Path(sys.executable).with_name("gpviz")
    cmd = ([str(exe)] if exe.exists() else [sys.executable, "-m", "gpviz"]) + ["demo", "--out", str(out),
                                                                               "--no-progress"]
    print("running:", " ".join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return seconds, load


def apply(text: str, values: dict[str, str]) -> tuple[str, list[str]]:
    """README text with each marker's value replaced; names of markers this run could not compute."""
    missing = []

    def repl(m):
        name = m.group("name")
        if name not in values:
            missing.append(name)
            return m.group(0)
        return f"<!-- n:{name} -->{values[name]}<!-- /n -->"

    return MARK.sub(repl, text), missing


#: A timing is a fact of the machine and its load when it ran (the README's was taken on an idle 2-core machine;
#: the same demo took 189 s at load 9): --check accepts the README's within this factor of this run's, which
#: still catches a demo that became an order of magnitude slower.
TIME_FACTOR = 10.0


def stale(text: str, values: dict[str, str]) -> list[str]:
    """The markers whose README value this run contradicts (printed as ``name: README says X, this run Y``).

    Page sizes and results must match exactly (the demo is seeded); the demo's wall time
    must lie within :data:`TIME_FACTOR` of this run's; the load is context, never checked.
    """
    said = {m.group("name"): m.group("value") for m in MARK.finditer(text)}
    out = []
    for name, value in values.items():
        if name == "demo_load" or name not in said:
            continue
        if name == "demo_time":
            readme_s, run_s = float(said[name].split()[0]), float(value.split()[0])
            ok = run_s / TIME_FACTOR <= readme_s <= run_s * TIME_FACTOR
        else:
            ok = said[name] == value
        if not ok:
            out.append(name)
            print(f"stale: {name}: README says {said[name]!r}, this run {value!r}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo-dir", type=Path, help="a folder written by `gpviz demo` (default: run and time it)")
    ap.add_argument("--check", action="store_true", help="only report whether the README is up to date")
    args = ap.parse_args()
    seconds = load = None
    demo = args.demo_dir
    if demo is None:
        demo = Path(tempfile.mkdtemp(prefix="gpviz-demo-"))
        seconds, load = run_demo(demo)
    values = numbers(demo, seconds, load)
    text = README.read_text(encoding="utf-8")
    new, missing = apply(text, values)
    for k, v in values.items():
        print(f"{k}: {v}")
    if missing:
        print(f"not recomputed (needs a timed demo run): {', '.join(sorted(set(missing)))}")
    if args.check:
        return 0 if stale(text, values) == [] else 1
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
