"""The optional-dependency gate: a missing extra skips on a bare venv and fails where run.sh requires it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.extras import REQUIRE_ENV, need

RUN_SH = Path(__file__).resolve().parent.parent / "scripts" / "run.sh"


def test_a_missing_module_fails_when_required(monkeypatch):
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="gpviz_no_such_module is not installed .*`fully-bayesian`"):
        need("gpviz_no_such_module", "fully-bayesian")


def test_a_missing_module_skips_on_a_bare_venv(monkeypatch):
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="gpviz_no_such_module"):
        need("gpviz_no_such_module", "test")


def test_a_present_module_is_returned():
    assert need("json", "test").dumps([1]) == "[1]"


def test_run_sh_test_requires_every_extra():
    text = RUN_SH.read_text(encoding="utf-8")
    test_job = text[text.index("  test)"):text.index("  test-oldest)", text.index("  test)"))]
    assert f"{REQUIRE_ENV}=1" in test_job
