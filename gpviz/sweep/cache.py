"""The sweep's on-disk cell cache, and the fingerprints that say which data and model factory a cache belongs to."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gpviz.errors import InputError
from gpviz.sweep.cells import STATUS_OK, Cell
from gpviz.values.columns import I_MODEL
from gpviz.values.tensors import to_numpy

CACHE_FORMAT = 1
_MANIFEST = "manifest.json"
# pandas < 3 parses CSV floats with a fast parser that can be off by an ulp; pandas 3 parses
# exactly by default and deprecates the option
_ROUND_TRIP = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}

def _fingerprint(X: torch.Tensor, Y: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in (X, Y):
        a = t.detach().cpu().contiguous()
        h.update(f"{list(a.shape)}|{a.dtype}|".encode())
        h.update(to_numpy(a, dtype=None).tobytes())
    return h.hexdigest()[:16]


def factory_fingerprint(make_model, depth: int = 0) -> str:
    """What the cache knows a model factory by.

    Its module and name and, where Python exposes them, its code, constants,
    defaults, closure values and ``functools.partial`` arguments: two lambdas share
    a name, not a fingerprint. Objects may add state through a ``fingerprint()``
    method (``with_priors`` factories give their priors at full precision).
    """
    h = hashlib.sha256()
    obj = make_model
    if isinstance(obj, functools.partial):
        h.update(factory_fingerprint(obj.func, depth + 1).encode())
        h.update(repr((obj.args, sorted(obj.keywords.items()))).encode())
        return h.hexdigest()[:16]
    h.update(f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}".encode())
    own = getattr(obj, "fingerprint", None)
    if callable(own):
        h.update(str(own()).encode())
    code = getattr(obj, "__code__", None)
    if code is not None:
        h.update(code.co_code)
        h.update(repr((code.co_consts, code.co_names, getattr(obj, "__defaults__", None),
                       getattr(obj, "__kwdefaults__", None))).encode())
        for cell in getattr(obj, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            h.update((factory_fingerprint(value, depth + 1) if callable(value) and depth < 4
                      else repr(value)).encode())
    return h.hexdigest()[:16]



# -- the on-disk cache ---------------------------------------------------------------------

class CellCache:
    """Finished cells on disk: one folder per cell, written to a temporary folder then renamed.

    A rename is atomic, so a cell folder is either complete or absent, whatever
    interrupts the run (Ctrl-C, a crash, a full disk).
    """

    def __init__(self, root, manifest: dict):
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cache_dir {str(self.root)!r} cannot be created: {exc}") from exc
        path = self.root / _MANIFEST
        if path.exists():
            try:
                old = json.loads(path.read_text())
            except ValueError as exc:
                raise InputError(f"cache_dir {str(self.root)!r} has an unreadable {_MANIFEST}: {exc}") from exc
            diff = {k: (old.get(k), v) for k, v in manifest.items() if old.get(k) != v}
            if diff:
                what = ", ".join(f"{k}: cached {a!r}, now {b!r}" for k, (a, b) in diff.items())
                raise InputError(f"cache_dir {str(self.root)!r} holds cells of another sweep ({what}); "
                                 f"use another cache_dir or delete it")
        else:
            self._write_text(path, json.dumps(manifest, indent=1, sort_keys=True))

    def _write_text(self, path: Path, text: str) -> None:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)

    def folder(self, seed: int, size: int, i_repeat: int) -> Path:
        return self.root / f"seed{seed}_n{size}_r{i_repeat}"

    def load(self, seed: int, i_config: int, size: int, i_repeat: int) -> Cell | None:
        """The cached cell, or ``None`` when it has not finished before."""
        folder = self.folder(seed, size, i_repeat)
        if not (folder / "cell.json").exists():
            return None
        meta = json.loads((folder / "cell.json").read_text())
        preds = pd.read_csv(folder / "predictions.csv", **_ROUND_TRIP,
                            dtype={I_MODEL: np.int32, "i_output": np.int32, "index": np.int64})
        params = None
        if (folder / "parameters.csv").exists():
            params = pd.read_csv(folder / "parameters.csv", **_ROUND_TRIP)
            params[I_MODEL] = params[I_MODEL].astype(np.int32)
            for c in params.columns[1:]:
                params[c] = params[c].astype(np.float64)
        return Cell(i_config, size, i_repeat, status=STATUS_OK, error=meta.get("error", ""),
                    fit_seconds=float(meta["fit_seconds"]), evaluations=int(meta["evaluations"]),
                    predictions=preds, parameters=params, cached=True)

    def store(self, seed: int, cell: Cell) -> None:
        """Writes a finished cell atomically (failed cells are not stored: a rerun retries them)."""
        final = self.folder(seed, cell.size, cell.i_repeat)
        tmp = self.root / f".tmp-{final.name}-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            # pandas writes floats with repr precision: a cached cell reads back bit for bit
            cell.predictions.to_csv(tmp / "predictions.csv", index=False)
            if cell.parameters is not None:
                cell.parameters.to_csv(tmp / "parameters.csv", index=False)
            (tmp / "cell.json").write_text(json.dumps({
                "size": cell.size, "i_repeat": cell.i_repeat, "seed": seed, "fit_seconds": cell.fit_seconds,
                "evaluations": cell.evaluations, "error": cell.error}))
            try:
                os.rename(tmp, final)
            except OSError:  # another run finished the same cell first: keep its copy
                if not (final / "cell.json").exists():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


# -- the sweep -----------------------------------------------------------------------------

# The scaling curve goes beside the expression: the figure becomes a two-column grid, every
# part of the expression in the first (as wide as its code), the chart in the second. The chart's
# cell has zero height so it stretches no row of the code; min-height keeps the page below clear.
