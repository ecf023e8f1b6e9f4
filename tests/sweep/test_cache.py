"""The cell cache: namespaces claimed atomically, checksummed cell files, unknown cells never trusted."""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import pickle
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from botorch.models import SingleTaskGP

from gpviz.errors import CacheWarning, InputError, UnsupportedError
from gpviz.sweep.cache import CellCache, sweep_identity
from gpviz.sweep.runner import cv_sweep
from tests.sweep.scale import FIT, LOOSE, REPEATS, SIZES, Probe, assert_same_sweep, cell_files, make_data, matern

@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def filled_cache(tmp_path_factory, data):
    """A cache with every cell of a small sweep, and the sweep it holds."""
    X, Y = data
    root = tmp_path_factory.mktemp("filled")
    sw = cv_sweep(Probe(), X, Y, SIZES, 1, seed=2, progress=False, fit_kwargs=FIT, cache_dir=root)
    return root, sw


def truncate(path: Path):
    b = path.read_bytes()
    path.write_bytes(b[: len(b) * 3 // 4])


def flip_a_byte(path: Path):
    b = bytearray(path.read_bytes())
    b[-40] ^= 0xFF
    path.write_bytes(bytes(b))


DAMAGES = {
    "truncated": truncate,
    "emptied": lambda p: p.write_bytes(b""),
    "garbage": lambda p: p.write_bytes(os.urandom(300)),
    "one flipped byte": flip_a_byte,
    "header edited": lambda p: p.write_bytes(p.read_bytes().replace(b'"size": 6', b'"size": 7', 1)),
    "another cell's file": lambda p: shutil.copyfile(p.with_name(p.name.replace("_n6_", "_n4_")), p),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_cell_is_refit_with_a_warning_naming_the_cell_and_file(damage, filled_cache, tmp_path, data):
    X, Y = data
    root, first = filled_cache
    shutil.copytree(root, tmp_path / "c")
    victim = next(p for p in cell_files(tmp_path / "c") if "_n6_" in p.name)
    DAMAGES[damage](victim)
    mk = Probe()
    with pytest.warns(CacheWarning, match=rf"cached cell n=6, repeat 0 in {victim}.* is damaged .*refit"):
        again = cv_sweep(mk, X, Y, SIZES, 1, seed=2, progress=False, fit_kwargs=FIT, cache_dir=tmp_path / "c")
    assert mk.calls == [6]  # only the damaged cell was fitted again ...
    assert_same_sweep(first, again, cached=[True, False])  # ... to the same result
    mk = Probe()
    third = cv_sweep(mk, X, Y, SIZES, 1, seed=2, progress=False, fit_kwargs=FIT, cache_dir=tmp_path / "c")
    assert mk.calls == [] and third.scores["cached"].all()  # the refit cell replaced the damaged file


def test_a_deleted_or_damaged_manifest_means_unknown_cells_not_a_match(filled_cache, tmp_path, data):
    X, Y = data
    root, first = filled_cache
    for what, damage in (("without a manifest.json", lambda p: p.unlink()),
                         ("a damaged manifest.json", lambda p: p.write_text("{ not json"))):
        folder = tmp_path / what.replace(" ", "_")
        shutil.copytree(root, folder)
        (manifest,) = folder.glob("sweep-*/manifest.json")
        damage(manifest)
        mk = Probe()
        with pytest.warns(CacheWarning, match=f"holds .*{what}; they are not trusted"):
            again = cv_sweep(mk, X, Y, SIZES, 1, seed=2, progress=False, fit_kwargs=FIT, cache_dir=folder)
        assert mk.calls == [4, 6]  # nothing reused silently
        assert_same_sweep(first, again, cached=[False, False])
        assert len(list(folder.glob("sweep-*/untrusted-*/*.cell"))) == 2  # kept aside for inspection, never read
        assert manifest.exists()


def test_a_different_sweep_in_the_same_folder_gets_its_own_namespace(filled_cache, tmp_path, data):
    X, Y = data
    root, first = filled_cache
    shutil.copytree(root, tmp_path / "c")
    other = cv_sweep(matern, X, Y, SIZES, 1, seed=2, progress=False, fit_kwargs=FIT, cache_dir=tmp_path / "c")
    assert not other.scores["cached"].any()
    assert len(list((tmp_path / "c").glob("sweep-*/manifest.json"))) == 2
    again = cv_sweep(Probe(), X, Y, SIZES, 1, seed=2, progress=False, fit_kwargs=FIT, cache_dir=tmp_path / "c")
    assert_same_sweep(first, again, cached=[True, True])
    # another factory that builds the same model is the same sweep: the cache keys on what is fitted
    mk = Probe()
    same = cv_sweep(lambda tx, ty: mk(tx, ty), X, Y, SIZES, 1, seed=2, progress=False, fit_kwargs=FIT,
                    cache_dir=tmp_path / "c")
    assert mk.calls == [] and same.scores["cached"].all()


def _race(target, argsets: list[tuple], timeout: float) -> list:
    """Runs ``target(barrier, out, *args)`` in one forked process per argument set, all released at one moment.

    Returns what each put on ``out`` (in the order they finished); every process must exit cleanly.
    """
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(len(argsets)), ctx.Queue()
    procs = [ctx.Process(target=target, args=(barrier, out, *args)) for args in argsets]
    for p in procs:
        p.start()
    got = [out.get(timeout=timeout) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return got


def _claim(barrier, out, root, identity):
    """In a forked process: claims a namespace at the barrier's moment and reports what it found."""
    barrier.wait()
    cache = CellCache(root, identity)
    out.put((identity["model"], cache.key, (cache.folder / "manifest.json").read_text()))


def test_concurrent_claims_of_one_folder_never_share_or_lose_a_namespace(tmp_path, data):
    X, Y = data
    ids = [sweep_identity(X, Y, f, FIT, object, True) for f in (SingleTaskGP, matern, LOOSE)]
    for attempt in range(5):  # the race, repeated
        root = tmp_path / f"race{attempt}"
        got = _race(_claim, [(root, ids[i % 3]) for i in range(6)], timeout=60)
        by_factory = {}
        for fingerprint, key, text in got:
            by_factory.setdefault(fingerprint, set()).add((key, text))
        assert len(by_factory) == 3 and all(len(v) == 1 for v in by_factory.values())  # one namespace per sweep
        for ident in ids:
            (key, text), = by_factory[ident["model"]]
            manifest = json.loads(text)
            assert CellCache(root, ident).key == key and manifest.pop("holds") is None and manifest == ident
        assert sorted(p.name for p in root.iterdir()) == sorted(f"sweep-{k}" for v in by_factory.values()
                                                                for k, _ in v)


def _sweep_at(barrier, out, name, folder):
    """In a forked process: one sweep, started at the barrier's moment; reports its results."""
    X, Y = make_data()
    barrier.wait()
    sw = cv_sweep({"stgp": SingleTaskGP, "matern": matern}[name], X, Y, [4, 5], 1, seed=0, cache_dir=folder,
                  progress=False, fit_kwargs=FIT)
    out.put((name, sw.scores.drop(columns=["fit_seconds", "cached"]), sw.parameters))


def test_two_different_sweeps_started_together_on_one_folder_never_mix(tmp_path, data):
    X, Y = data
    refs = {name: cv_sweep(f, X, Y, [4, 5], 1, seed=0, progress=False, fit_kwargs=FIT)
            for name, f in (("stgp", SingleTaskGP), ("matern", matern))}
    for attempt in range(3):  # the race, repeated; each attempt on a fresh folder
        folder = tmp_path / f"race{attempt}"
        got = _race(_sweep_at, [(name, folder) for name in refs], timeout=300)
        for name, scores, params in got:
            pd.testing.assert_frame_equal(scores, refs[name].scores.drop(columns=["fit_seconds", "cached"]),
                                          check_exact=True)
            pd.testing.assert_frame_equal(params, refs[name].parameters, check_exact=True)
        assert len(list(folder.glob("sweep-*/manifest.json"))) == 2 and len(cell_files(folder)) == 4
        # and each reads back its own cells
        for name, f in (("stgp", SingleTaskGP), ("matern", matern)):
            again = cv_sweep(f, X, Y, [4, 5], 1, seed=0, cache_dir=folder, progress=False, fit_kwargs=FIT)
            assert_same_sweep(refs[name], again, cached=[True, True])


def test_two_runs_of_the_same_sweep_share_one_folder(tmp_path, data):
    """Two processes resuming one study at once: both finish, neither mixes or damages a cell."""
    X, Y = data
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as ex:
        futs = [ex.submit(cv_sweep, Probe(), X, Y, SIZES, REPEATS, 1, None, tmp_path, False,
                          fit_kwargs=FIT) for _ in range(2)]
        sweeps = [f.result() for f in futs]
    ref = cv_sweep(SingleTaskGP, X, Y, SIZES, REPEATS, seed=1, progress=False, fit_kwargs=FIT)
    for sw in sweeps:
        assert_same_sweep(ref, sw)
    mk = Probe()
    again = cv_sweep(mk, X, Y, SIZES, REPEATS, seed=1, progress=False, fit_kwargs=FIT, cache_dir=tmp_path)
    assert mk.calls == [] and again.scores["cached"].all()
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_a_sweep_pickles_and_its_copy_keeps_verdicts_but_reads_no_cells(tmp_path, data):
    """A Sweep holds its cache (its verdicts are kept there); the cache's cell matcher is a closure over the job that
    pickle cannot send, so a copy in another process keeps verdicts beside the cells and refuses to read a cell."""
    X, Y = data
    sw = cv_sweep(SingleTaskGP, X, Y, [4], 1, progress=False, fit_kwargs=FIT, cache_dir=tmp_path)
    copy = pickle.loads(pickle.dumps(sw))
    frame = pd.DataFrame({"key": ["covar_module.lengthscale"], "value": [0.25]})
    copy.cache.store_pull("probe", frame)
    pd.testing.assert_frame_equal(sw.cache.load_pull("probe"), frame)  # written by the copy, read by the original
    with pytest.raises(UnsupportedError, match=r"cell n=4, repeat 0.*keeps the sweep's verdicts only"):
        copy.cache.load(sw.seed, 0, 4, 0)
    assert sw.cache.load(sw.seed, 0, 4, 0).size == 4  # the cache of the process that ran it still reads its cell


def test_an_unwritable_cache_dir_is_an_input_error_before_any_fit(tmp_path, data):
    X, Y = data
    (tmp_path / "a_file").write_text("")
    mk = Probe()
    with pytest.raises(InputError, match=r"cache_dir .*a_file/cells.* is not a writable folder"):
        cv_sweep(mk, X, Y, [4], 1, progress=False, cache_dir=tmp_path / "a_file" / "cells")
    ro = tmp_path / "read_only"
    ro.mkdir()
    if os.geteuid() != 0:
        ro.chmod(0o555)
        undo = lambda: ro.chmod(0o755)  # noqa: E731
    else:  # root writes through file modes: make the folder immutable instead
        if subprocess.run(["chattr", "+i", str(ro)], capture_output=True).returncode != 0:
            pytest.skip("running as root on a file system without chattr +i: no folder is read-only to root")
        undo = lambda: subprocess.run(["chattr", "-i", str(ro)], check=True)  # noqa: E731
    try:
        with pytest.raises(InputError, match=r"cache_dir .*read_only.* is not a writable folder \((Permission|OSError)"):
            cv_sweep(mk, X, Y, [4], 1, progress=False, cache_dir=ro)
        with pytest.raises(InputError, match=r"cache_dir .*read_only/inner.* is not a writable folder"):
            cv_sweep(mk, X, Y, [4], 1, progress=False, cache_dir=ro / "inner", workers=2)
    finally:
        undo()
    assert mk.calls == []
