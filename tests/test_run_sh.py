"""scripts/run.sh says what it installs as it goes: a numbered line before each step, pip's progress on."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

RUN_SH = Path(__file__).resolve().parent.parent / "scripts" / "run.sh"


def test_every_install_step_is_announced_and_pip_is_not_quiet():
    lines = RUN_SH.read_text().splitlines()
    installs = [i for i, line in enumerate(lines) if "${PIP[@]}" in line and not line.strip().startswith("PIP=")]
    assert len(installs) >= 3
    for i in installs:
        before = [line for line in lines[max(0, i - 3):i] if line.strip().startswith("step ")]
        assert before, f"run.sh line {i + 1} installs without saying so first: {lines[i].strip()}"
    pip_def = next(line for line in lines if line.strip().startswith("PIP="))
    assert "--progress-bar on" in pip_def
    assert not re.search(r"pip install[^\n]*\s-q\b", RUN_SH.read_text())
    steps = re.findall(r'step "\[(\d)/(\d)\]', RUN_SH.read_text())
    assert {s for s, _ in steps} == {"1", "2", "3"} and {n for _, n in steps} == {"3"}


def test_run_sh_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(RUN_SH)]).returncode == 0
