"""The sweep's on-disk cell cache, and the fingerprints that say which data and model factory a cache belongs to."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gpviz.errors import CacheWarning, InputError
from gpviz.sweep.cells import STATUS_OK, Cell
from gpviz.values.tensors import to_numpy

CACHE_FORMAT = 2
_MANIFEST = "manifest.json"
CELL_SUFFIX = ".cell"
CELL_MAGIC = b"gpviz-cell 2\n"


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


def sweep_identity(X: torch.Tensor, Y: torch.Tensor, make_model, fit_kwargs, mll_cls, observation_noise,
                   order: str = "random") -> dict:
    """Everything a cell's result depends on besides ``(seed, size, repeat)``: the cache's namespace key.

    ``order`` enters only when it is not ``"random"``, so random sweeps keep the namespaces they had.
    """
    return {"format": CACHE_FORMAT, "data": _fingerprint(X, Y),
            "make_model": getattr(make_model, "__qualname__", type(make_model).__name__),
            "make_model_fingerprint": factory_fingerprint(make_model),
            "fit_kwargs": repr(sorted((fit_kwargs or {}).items())),
            "mll_cls": getattr(mll_cls, "__qualname__", str(mll_cls)),
            "observation_noise": bool(observation_noise),
            "default_dtype": str(torch.get_default_dtype()),
            **({"order": order} if order != "random" else {})}


def _encode_frame(df: pd.DataFrame) -> dict:
    """A frame as plain tensors (bit-exact, loadable with ``torch.load(weights_only=True)``)."""
    return {"columns": [str(c) for c in df.columns],
            "values": [torch.from_numpy(np.array(df[c].to_numpy(), copy=True)) for c in df.columns]}


def _decode_frame(blob: dict) -> pd.DataFrame:
    return pd.DataFrame({c: to_numpy(v, dtype=None) for c, v in zip(blob["columns"], blob["values"])})


class CellCache:
    """Finished cells on disk, one namespace per sweep identity, one checksummed file per cell.

    Layout::

        cache_dir/sweep-<identity hash>/manifest.json    the identity, claimed atomically
        cache_dir/sweep-<identity hash>/seed0_n8_r0.cell  one finished cell

    A different sweep (other data, factory, fit arguments) lands in its own
    namespace, so two sweeps can share a folder, at the same time too, and never see
    each other's cells. Each cell file is written to a temporary name and renamed
    (readers see a whole file or none) and carries its identity and a SHA-256 of its
    payload: a damaged, truncated or foreign file is refit with a :class:`CacheWarning`
    naming the cell and the file, never trusted and never fatal. Several processes of
    the same sweep may read and write one namespace at once (the same cell written
    twice holds the same result).
    """

    def __init__(self, root, identity: dict):
        self.root = Path(root)
        self.identity = dict(identity)
        text = json.dumps(self.identity, indent=1, sort_keys=True)
        self.key = hashlib.sha256(text.encode()).hexdigest()[:16]
        self.folder = self.root / f"sweep-{self.key}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            # an unwritable folder must fail now, not after the first (possibly hour-long) cell
            fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=self.folder)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise InputError(f"cache_dir {str(self.root)!r} is not a writable folder ({type(exc).__name__}: "
                             f"{exc}); pass a folder you can write to, or cache_dir=None") from exc
        self._claim(text)
        self._warn_old_format()

    # manifest -------------------------------------------------------------------------------

    def _claim(self, text: str) -> None:
        """Claims the namespace: creates ``manifest.json`` atomically or checks the one there."""
        path = self.folder / _MANIFEST
        for _ in range(50):
            try:
                found = path.read_text()
            except FileNotFoundError:
                found = None
            if found is None:
                cells = sorted(self.folder.glob("*" + CELL_SUFFIX))
                if cells:  # cells of an unknown sweep: never a match
                    self._quarantine(cells, f"{len(cells)} cell file(s) without a {_MANIFEST}")
                tmp = self._temp_path(_MANIFEST)
                tmp.write_text(text)
                try:
                    os.link(tmp, path)  # fails if another process claimed first; never a half-written file
                except FileExistsError:
                    continue  # read theirs
                except OSError:  # no hard links here (some network or FAT file systems)
                    try:
                        os.rename(tmp, path) if not path.exists() else None
                    except OSError:
                        continue
                finally:
                    tmp.unlink(missing_ok=True)
                return
            if found == text:
                return
            try:
                json.loads(found)
            except ValueError:
                if not found.strip():  # another process between creating and filling it (no-link fallback)
                    time.sleep(0.02)
                    continue
                cells = sorted(self.folder.glob("*" + CELL_SUFFIX))
                self._quarantine(cells, f"a damaged {_MANIFEST}")
                self._write_atomic(path, text.encode())
                return
            raise InputError(f"cache_dir {str(self.root)!r}: {path} names another sweep than its folder name "
                             f"says (edited by hand?); delete {self.folder}")
        raise InputError(f"cache_dir {str(self.root)!r}: could not claim {path} (it keeps changing)")

    def _quarantine(self, cells: list[Path], why: str) -> None:
        """Moves cells of unknown provenance aside (kept for inspection, never read again)."""
        aside = self.folder / f"untrusted-{uuid.uuid4().hex[:8]}"
        aside.mkdir()
        for p in cells:
            try:
                os.rename(p, aside / p.name)
            except FileNotFoundError:
                pass
        warnings.warn(f"gpviz.cv_sweep: {self.folder} holds {why}; they are not trusted (moved to {aside}) and "
                      f"those cells are refit", CacheWarning, stacklevel=4)

    def _warn_old_format(self) -> None:
        old = [p for p in self.root.glob("seed*_n*_r*") if p.is_dir()]
        if old:
            warnings.warn(f"gpviz.cv_sweep: cache_dir {str(self.root)!r} holds {len(old)} cell folder(s) of an "
                          f"older gpviz cache format; they are not read (delete them to free the space)",
                          CacheWarning, stacklevel=4)

    # cells -------------------------------------------------------------------------------------

    def _temp_path(self, name: str) -> Path:
        return self.folder / f".tmp-{name}-{uuid.uuid4().hex}"

    def _write_atomic(self, path: Path, data: bytes) -> None:
        tmp = self._temp_path(path.name)
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # a crash after the rename must not leave a file of zeros
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def path(self, seed: int, size: int, i_repeat: int) -> Path:
        """The file of one cell."""
        return self.folder / f"seed{seed}_n{size}_r{i_repeat}{CELL_SUFFIX}"

    def load(self, seed: int, i_config: int, size: int, i_repeat: int) -> Cell | None:
        """The cached cell, or ``None`` when it has not finished before or its file cannot be trusted."""
        path = self.path(seed, size, i_repeat)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            return self._damaged(path, size, i_repeat, f"unreadable: {exc}")
        try:
            return decode_cell(data, self.key, seed, i_config, size, i_repeat)
        except Exception as exc:  # any damage means refit: never trusted, never fatal
            return self._damaged(path, size, i_repeat, str(exc) or type(exc).__name__)

    def _damaged(self, path: Path, size: int, i_repeat: int, why: str) -> None:
        warnings.warn(f"gpviz.cv_sweep: the cached cell n={size}, repeat {i_repeat} in {path} is damaged ({why}); "
                      f"it is refit", CacheWarning, stacklevel=4)
        return None

    def store(self, seed: int, cell: Cell) -> None:
        """Writes a finished cell atomically (failed cells are not stored: a rerun retries them)."""
        self._write_atomic(self.path(seed, cell.size, cell.i_repeat), encode_cell(cell, self.key, seed))


def encode_cell(cell: Cell, key: str, seed: int) -> bytes:
    """One cell as bytes: a magic line, a JSON header (identity, bookkeeping, checksum), a torch payload."""
    buf = io.BytesIO()
    torch.save({"predictions": _encode_frame(cell.predictions),
                "parameters": None if cell.parameters is None else _encode_frame(cell.parameters),
                "state": cell.state}, buf)
    payload = buf.getvalue()
    header = {"sweep": key, "seed": seed, "size": cell.size, "i_repeat": cell.i_repeat,
              "fit_seconds": cell.fit_seconds, "evaluations": cell.evaluations, "error": cell.error,
              "payload_bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    return CELL_MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload


def decode_cell(data: bytes, key: str, seed: int, i_config: int, size: int, i_repeat: int) -> Cell:
    """The cell ``encode_cell`` wrote, checked against its checksum and the cell it should be.

    Raises:
        ValueError: naming what does not match (format, identity, cell, length, checksum, rows).
    """
    if not data:
        raise ValueError("the file is empty")
    if not data.startswith(CELL_MAGIC):
        raise ValueError("not a gpviz cell file")
    end = data.find(b"\n", len(CELL_MAGIC))
    if end < 0:
        raise ValueError("truncated header")
    try:
        header = json.loads(data[len(CELL_MAGIC):end])
    except ValueError as exc:
        raise ValueError(f"unreadable header ({exc})") from None
    want = {"sweep": key, "seed": seed, "size": size, "i_repeat": i_repeat}
    got = {k: header.get(k) for k in want}
    if got != want:
        raise ValueError(f"the file belongs to another cell or sweep ({got}, expected {want})")
    payload = data[end + 1:]
    if len(payload) != header.get("payload_bytes"):
        raise ValueError(f"truncated: {len(payload)} of {header.get('payload_bytes')} payload bytes")
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise ValueError("checksum mismatch")
    blob = torch.load(io.BytesIO(payload), weights_only=True)
    preds = _decode_frame(blob["predictions"])
    params = None if blob["parameters"] is None else _decode_frame(blob["parameters"])
    if len(preds) == 0 or len(preds) % size or (params is not None and len(params) % size):
        raise ValueError(f"{len(preds)} prediction rows for {size} folds")
    return Cell(i_config, size, i_repeat, status=STATUS_OK, error=str(header.get("error", "")),
                fit_seconds=float(header["fit_seconds"]), evaluations=int(header["evaluations"]),
                predictions=preds, parameters=params, cached=True, state=blob["state"])
