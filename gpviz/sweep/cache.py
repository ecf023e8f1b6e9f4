"""The sweep's on-disk cell cache, keyed on what the sweep fits: the data, the model the factory builds, the fit.

A namespace's identity (:func:`sweep_identity`) holds content digests
(:mod:`gpviz.sweep.identity`), never code text or reprs: the data's bytes, the model the
factory builds (its classes, every parameter, buffer, prior and constraint, the transforms),
the fit arguments and the MLL class by content, the default dtype, the versions of the
libraries that fit, and the cache format. Each cell's file also records the digest of the
model the factory builds on that cell's own folds, so a factory that builds another model
at another size is refit, never served another model's cell.

It is a little longer than 500 lines because the namespace's claim, its cells and the
sweep's kept verdicts share one protocol (atomic writes, checksums, damage warnings) that
reads best in one class.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import torch

from gpviz.errors import CacheWarning, InputError, UnsupportedError
from gpviz.sweep.cells import BATCHED, FIXED, SEPARATE, STATUS_OK, Cell, CellJob, build_cell, cell_seed, subset_rows
from gpviz.sweep.identity import content_digest, describe_value, identity_build, library_version
from gpviz.values.prior_info import describe_priors
from gpviz.values.tensors import to_numpy

CACHE_FORMAT = 3
_MANIFEST = "manifest.json"
CELL_SUFFIX = ".cell"
CELL_MAGIC = b"gpviz-cell 3\n"
PULL_SUFFIX = ".pull"
PULL_MAGIC = b"gpviz-verdicts 1\n"
#: The libraries a fit runs through: another version may fit differently, so it is another namespace.
_FIT_LIBRARIES = ("torch", "gpytorch", "linear_operator", "botorch", "scipy", "numpy")
#: The cell the namespace's model digest is built on: the data's first 3 rows, whatever the sizes and seed.
_PROBE_SIZE = 3
#: The readable account of a namespace in its manifest: not part of the key.
_HOLDS = "holds"


def _fingerprint(X: torch.Tensor, Y: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in (X, Y):
        a = t.detach().cpu().contiguous()
        h.update(f"{list(a.shape)}|{a.dtype}|".encode())
        h.update(to_numpy(a, dtype=None).tobytes())
    return h.hexdigest()


def factory_fingerprint(make_model: object) -> str:
    """A model factory's content digest (:func:`gpviz.sweep.identity.content_digest`), 16 hex digits.

    The cache does not key on it (it keys on the model the factory builds); it tells two
    factories apart by what they hold: two lambdas share a name, not a fingerprint.
    """
    return content_digest(make_model, "make_model")[:16]


def build_model(job: CellJob, rows: np.ndarray, torch_seed: int):
    """The model ``job.make_model`` builds for the cell of ``rows`` in the job's mode, unfitted, as the fit sees it
    (in the data's dtype and on its device): :func:`gpviz.sweep.cells.build_cell`, a list of fold models for
    ``"separate"``.

    Under the job's default dtype and the cell's seeds (:func:`gpviz.seeding.seeded`, the caller's generators
    restored), inside :func:`gpviz.sweep.identity.identity_build` so a factory may tell this build from a fit's.
    """
    old_dtype = torch.get_default_dtype()
    try:
        torch.set_default_dtype(job.dtype)
        with identity_build():
            built = build_cell(job.make_model, job.X, job.Y, rows, torch_seed, job.mode)
            # as the fit sees it: the fit moves the MLL, and so the model, to the data's dtype and device. A copy,
            # so that a prior shared between builds (a closure's, a module's) is not converted here
            if job.mode == SEPARATE:
                return [copy.deepcopy(model).to(job.X) for model in built]
            return copy.deepcopy(built).to(job.X)
    finally:
        torch.set_default_dtype(old_dtype)


def built_model_digest(job: CellJob, rows: np.ndarray, torch_seed: int, where: str) -> tuple[str | None, object]:
    """The content digest of the model :func:`build_model` builds, and the model (``(None, None)`` if the
    factory raises: that cell then fails in its own fit, as it would without a cache).

    Raises:
        InputError: for a model part that cannot be read by content, naming it.
    """
    try:
        model = build_model(job, rows, torch_seed)
    except Exception:  # the fit will raise it again, with the cell's name on it
        return None, None
    return content_digest(model, where), model


def _versions() -> dict:
    return {"python": sys.version.split()[0],
            **{n: (library_version(n) or "").partition("==")[2] for n in _FIT_LIBRARIES if n in sys.modules}}


def _holds(model, job: CellJob) -> dict:
    """What a namespace holds, in words: the model class, its priors, the fit arguments."""
    out = {"model": f"{type(model).__module__}.{type(model).__qualname__}" if model is not None else
           "make_model raised on the first 3 rows; each cell is matched by the model built on its own folds",
           "fit_kwargs": describe_value(job.fit_kwargs or {}),
           "mll_cls": describe_value(job.mll_cls)}
    if model is not None:
        try:
            out["priors"] = [f"{path}: {prior}" for path, prior in describe_priors(model)]
        except Exception as exc:  # words only: a model gpviz cannot describe keeps its (content) key
            out["priors"] = f"not described ({type(exc).__name__}: {exc})"
    return out


def _job_identity(job: CellJob) -> tuple[dict, dict]:
    """The identity of a job's sweep and the readable account of it (see :func:`sweep_identity`)."""
    fit_kwargs = content_digest(dict(job.fit_kwargs or {}), "fit_kwargs")
    mll = content_digest(job.mll_cls, "mll_cls")
    probe = np.arange(_PROBE_SIZE, dtype=np.int64)
    model_digest, model = built_model_digest(job, probe, cell_seed(0, _PROBE_SIZE, 0),
                                             "make_model(train_X, train_Y)")
    identity = {"format": CACHE_FORMAT, "data": _fingerprint(job.X, job.Y), "model": model_digest,
                "fit_kwargs": fit_kwargs, "mll_cls": mll, "observation_noise": bool(job.observation_noise),
                "default_dtype": str(job.dtype), "versions": _versions(),
                **({"order": job.order} if job.order != "random" else {}),
                # a refit sweep's cells keep the keys they had before refit=False and folds= existed
                **({"refit": False} if job.mode == FIXED else {}),
                **({"folds": job.mode} if job.mode == SEPARATE else {})}
    return identity, _holds(model, job)


def sweep_identity(X: torch.Tensor, Y: torch.Tensor, make_model: Callable, fit_kwargs: Mapping | None, mll_cls: type,
                   observation_noise: bool, order: str = "random", mode: str = BATCHED) -> dict:
    """Everything a cell's result depends on besides ``(seed, size, repeat)``: the cache's namespace key.

    Content digests of the data, of the model ``make_model`` builds on the data's first 3
    rows (their leave-one-out folds; ``None`` if the factory raises there), of
    ``fit_kwargs`` and ``mll_cls``; ``observation_noise``; torch's default dtype; the
    versions of Python and the fitting libraries; the cache format. ``order`` enters only
    when it is not ``"random"``; the mode (:data:`gpviz.sweep.cells.MODES`) only when it is
    not ``"batched"``: ``refit: False`` for ``"fixed"``, ``folds: "separate"``. The model
    digested is the one the mode builds (the full-data model, or every fold's own).

    Raises:
        InputError: for a part of the fit arguments, MLL class or built model that cannot be
            read by content, naming it (e.g. ``fit_kwargs['callback'].__closure__[0]``).
    """
    job = CellJob(make_model, X, Y, mll_cls, dict(fit_kwargs) if fit_kwargs else None, bool(observation_noise),
                  torch.get_default_dtype(), None, order, mode)
    return _job_identity(job)[0]


def sweep_cache(root: str | os.PathLike[str], job: CellJob) -> "CellCache":
    """The cell cache of a job's sweep in ``root``: its namespace, and each cell matched on its built model.

    Raises:
        InputError: as :func:`sweep_identity`, or for a folder that cannot be written.
    """
    identity, holds = _job_identity(job)

    def cell_model(seed: int, size: int, i_repeat: int) -> str | None:
        rows = subset_rows(job.X.shape[0], size, i_repeat, seed, job.order)
        return built_model_digest(job, rows, cell_seed(seed, size, i_repeat),
                                  f"make_model(train_X, train_Y) for the cell n={size}, repeat {i_repeat}")[0]

    return CellCache(root, identity, cell_model=cell_model, holds=holds, per_fold=job.mode != FIXED)


def _encode_frame(df: pd.DataFrame) -> dict:
    """A frame as plain tensors (bit-exact, loadable with ``torch.load(weights_only=True)``)."""
    return {"columns": [str(c) for c in df.columns],
            "values": [torch.from_numpy(np.array(df[c].to_numpy(), copy=True)) for c in df.columns]}


def _decode_frame(blob: dict) -> pd.DataFrame:
    return pd.DataFrame({c: to_numpy(v, dtype=None) for c, v in zip(blob["columns"], blob["values"])})


def _cells_left_behind(seed: int, size: int, i_repeat: int) -> str | None:
    """The cell matcher of a cache that travelled to another process: it keeps verdicts, not cells."""
    raise UnsupportedError(f"this sweep's cache was sent from the process that ran it, without the factory that "
                           f"identifies its cells (cell n={size}, repeat {i_repeat}); it keeps the sweep's "
                           f"verdicts only: run cv_sweep with the same cache_dir to read its cells")


class CellCache:
    """Finished cells on disk, one namespace per sweep identity, one checksummed file per cell.

    Layout::

        cache_dir/sweep-<identity hash>/manifest.json    the identity, claimed atomically
        cache_dir/sweep-<identity hash>/seed0_n8_r0.cell  one finished cell

    A different sweep (other data, built model, fit arguments, MLL, dtype, library versions)
    lands in its own namespace, so two sweeps can share a folder, at the same time too, and
    never see each other's cells; each cell file also records the digest of the model built
    for that cell (one fit for another model is refit with a :class:`CacheWarning`). Each cell file is written to a temporary name and renamed
    (readers see a whole file or none) and carries its identity and a SHA-256 of its
    payload: a damaged, truncated or foreign file is refit with a :class:`CacheWarning`
    naming the cell and the file, never trusted and never fatal. Several processes of
    the same sweep may read and write one namespace at once (the same cell written
    twice holds the same result).
    """

    def __init__(self, root: str | os.PathLike[str], identity: dict,
                 cell_model: Callable[[int, int, int], str | None] | None = None, holds: dict | None = None,
                 per_fold: bool = True):
        """Opens (or claims) the namespace of ``identity`` in ``root``.

        Args:
            root: The cache folder.
            identity: The namespace's key (:func:`sweep_identity`); JSON-able.
            cell_model: ``(seed, size, i_repeat) -> digest`` of the model the factory builds for
                that cell (``None`` when it raised); a cell file is read only if it records the
                same digest. Without it, cells record none.
            holds: A readable account of the namespace for its manifest (not part of the key).
            per_fold: Whether a cell's parameter rows come per fold (``False`` for ``refit=False``
                cells: one model's members).
        """
        self.root = Path(root)
        self.identity = dict(identity)
        text = json.dumps(self.identity, indent=1, sort_keys=True)
        self.key = hashlib.sha256(text.encode()).hexdigest()[:16]
        self.folder = self.root / f"sweep-{self.key}"
        self._cell_model = cell_model
        self._per_fold = per_fold
        self._models: dict[tuple[int, int, int], str | None] = {}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            # an unwritable folder must fail now, not after the first (possibly hour-long) cell
            fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=self.folder)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise InputError(f"cache_dir {str(self.root)!r} is not a writable folder ({type(exc).__name__}: "
                             f"{exc}); pass a folder you can write to, or cache_dir=None") from exc
        self._claim(json.dumps({**self.identity, _HOLDS: holds}, indent=1, sort_keys=True))
        self._warn_old_format()

    def __getstate__(self) -> dict:
        # A Sweep keeps its cache to store its verdicts beside its cells, and a Sweep travels between processes
        # (returned by a worker, saved with pickle). The cell matcher closes over the user's factory, which pickle
        # may not send (a lambda, a local function): it stays behind, and the copy refuses to read or write cells.
        state = dict(self.__dict__)
        state["_cell_model"] = _cells_left_behind
        state["_models"] = {}
        return state

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
            try:
                theirs = json.loads(found)
            except ValueError:
                if not found.strip():  # another process between creating and filling it (no-link fallback)
                    time.sleep(0.02)
                    continue
                cells = sorted(self.folder.glob("*" + CELL_SUFFIX))
                self._quarantine(cells, f"a damaged {_MANIFEST}")
                self._write_atomic(path, text.encode())
                return
            if isinstance(theirs, dict) and {k: v for k, v in theirs.items() if k != _HOLDS} == self.identity:
                return  # the same identity (its account in words may be another gpviz's)
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
        """One :class:`CacheWarning` for namespaces of older cache formats in ``root``: never read, their cells refit."""
        old = [p for p in self.root.glob("seed*_n*_r*") if p.is_dir()]
        formats = set()
        for manifest in self.root.glob(f"sweep-*/{_MANIFEST}"):
            try:
                fmt = json.loads(manifest.read_text()).get("format")
            except (OSError, ValueError, AttributeError):
                continue  # damaged or being written: its own sweep deals with it
            if fmt != CACHE_FORMAT:
                old.append(manifest.parent)
                formats.add(str(fmt))
        if old:
            which = f" (format {', '.join(sorted(formats))})" if formats else ""
            warnings.warn(f"gpviz.cv_sweep: cache_dir {str(self.root)!r} holds {len(old)} sweep folder(s) of an "
                          f"older gpviz cache format{which}, keyed on code text and reprs that could not tell "
                          f"two priors apart; they are not read and this sweep's cells are fit anew (delete "
                          f"{', '.join(sorted(p.name for p in old)[:3])}{', ...' if len(old) > 3 else ''} to free "
                          f"the space)", CacheWarning, stacklevel=4)

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

    def model_digest(self, seed: int, size: int, i_repeat: int) -> str | None:
        """The digest of the model the factory builds for this cell (computed once; ``None`` without one)."""
        key = (seed, size, i_repeat)
        if key not in self._models:
            self._models[key] = None if self._cell_model is None else self._cell_model(seed, size, i_repeat)
        return self._models[key]

    def load(self, seed: int, i_config: int, size: int, i_repeat: int) -> Cell | None:
        """The cached cell, or ``None`` when it has not finished before, was fit for another model than the
        factory builds now, or its file cannot be trusted."""
        path = self.path(seed, size, i_repeat)
        # before any fit, for every cell: an in-process fit converts the priors it holds to the data's dtype
        model = self.model_digest(seed, size, i_repeat)
        if not path.exists():
            return None
        if self._cell_model is not None and model is None:
            return None  # the factory raised: the cell's own fit says why
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._damaged(path, size, i_repeat, f"unreadable: {exc}")
            return None
        try:
            return decode_cell(data, self.key, seed, i_config, size, i_repeat, model, self._per_fold)
        except OtherModel as exc:
            warnings.warn(f"gpviz.cv_sweep: the cached cell n={size}, repeat {i_repeat} in {path} was fit for "
                          f"another model than make_model builds for it now ({exc}); it is refit", CacheWarning,
                          stacklevel=3)
            return None
        except Exception as exc:  # any damage means refit: never trusted, never fatal
            self._damaged(path, size, i_repeat, str(exc) or type(exc).__name__)
            return None

    def _damaged(self, path: Path, size: int, i_repeat: int, why: str) -> None:
        warnings.warn(f"gpviz.cv_sweep: the cached cell n={size}, repeat {i_repeat} in {path} is damaged ({why}); "
                      f"it is refit", CacheWarning, stacklevel=4)

    def store(self, seed: int, cell: Cell) -> None:
        """Writes a finished cell atomically (failed cells are not stored: a rerun retries them)."""
        model = self.model_digest(seed, cell.size, cell.i_repeat)
        if self._cell_model is not None and model is None:
            warnings.warn(f"gpviz.cv_sweep: the cell n={cell.size}, repeat {cell.i_repeat} is not cached: "
                          f"make_model raised when gpviz built its model to identify it", CacheWarning, stacklevel=3)
            return
        self._write_atomic(self.path(seed, cell.size, cell.i_repeat), encode_cell(cell, self.key, seed, model))


    # verdicts kept with the sweep ------------------------------------------------------------

    def pull_path(self, name: str) -> Path:
        """The file of one set of kept verdicts (``name``: what was judged, see :func:`gpviz.priors.judge.pull_name`)."""
        return self.folder / f"verdicts-{name}{PULL_SUFFIX}"

    def store_pull(self, name: str, frame: pd.DataFrame) -> None:
        """Keeps a sweep's prior_pull rows beside its cells (atomically; checksummed like a cell)."""
        blob = io.BytesIO()
        torch.save({"key": self.key, "name": name, "frame": _encode_any_frame(frame)}, blob)
        payload = blob.getvalue()
        self._write_atomic(self.pull_path(name), PULL_MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n"
                           + payload)

    def load_pull(self, name: str) -> pd.DataFrame | None:
        """The kept prior_pull rows of ``name``, or None (not kept, or a file that cannot be trusted: a
        :class:`CacheWarning`, and the verdicts are computed again)."""
        path = self.pull_path(name)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        try:
            if not data.startswith(PULL_MAGIC):
                raise ValueError("not a gpviz verdicts file")
            digest, _, payload = data[len(PULL_MAGIC):].partition(b"\n")
            if hashlib.sha256(payload).hexdigest().encode() != digest:
                raise ValueError("checksum mismatch")
            blob = torch.load(io.BytesIO(payload), weights_only=True)
            if blob["key"] != self.key or blob["name"] != name:
                raise ValueError("written for another sweep")
            return _decode_any_frame(blob["frame"])
        except Exception as exc:  # any damage means judge again: never trusted, never fatal
            warnings.warn(f"gpviz: the kept verdicts {path} cannot be read ({exc}); they are computed again",
                          CacheWarning, stacklevel=3)
            return None


def _encode_any_frame(df: pd.DataFrame) -> dict:
    """A frame of numeric, bool and string columns as tensors and lists of strings (``weights_only`` loadable)."""
    cols: list[str] = []
    kinds: list[str] = []
    values: list[list[str] | torch.Tensor] = []
    for c in df.columns:
        col = df[c]
        cols.append(str(c))
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
            # object columns and pandas' string dtypes alike (pandas 3 makes a column of str its "str" dtype)
            kinds.append(f"text:{col.dtype}")
            values.append([str(v) for v in col])
        else:
            kinds.append(str(col.dtype))
            values.append(torch.from_numpy(np.array(col.to_numpy(), copy=True)))
    return {"columns": cols, "kinds": kinds, "values": values}


def _decode_any_frame(blob: dict) -> pd.DataFrame:
    out = {}
    for c, kind, v in zip(blob["columns"], blob["kinds"], blob["values"]):
        if kind.startswith("text:"):
            out[c] = pd.Series(v, dtype=kind[len("text:"):])
        else:
            out[c] = pd.Series(to_numpy(v, dtype=None)).astype(kind)
    return pd.DataFrame(out, columns=blob["columns"])


class OtherModel(ValueError):
    """A cell file of this namespace whose recorded model digest is not the one the factory builds now."""


def encode_cell(cell: Cell, key: str, seed: int, model: str | None = None) -> bytes:
    """One cell as bytes: a magic line, a JSON header (identity, bookkeeping, checksum), a torch payload."""
    buf = io.BytesIO()
    torch.save({"predictions": _encode_frame(cell.predictions),
                "parameters": None if cell.parameters is None else _encode_frame(cell.parameters),
                "state": cell.state}, buf)
    payload = buf.getvalue()
    header = {"sweep": key, "model": model, "seed": seed, "size": cell.size, "i_repeat": cell.i_repeat,
              "fit_seconds": cell.fit_seconds, "evaluations": cell.evaluations, "error": cell.error,
              "payload_bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    return CELL_MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload


def decode_cell(data: bytes, key: str, seed: int, i_config: int, size: int, i_repeat: int,
                model: str | None = None, per_fold: bool = True) -> Cell:
    """The cell ``encode_cell`` wrote, checked against its checksum and the cell and model it should be.

    Raises:
        OtherModel: the file records another built-model digest than ``model``.
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
    if header.get("model") != model:
        raise OtherModel(f"model digest {str(header.get('model'))[:12]}, now {str(model)[:12]}")
    blob = torch.load(io.BytesIO(payload), weights_only=True)
    preds = _decode_frame(blob["predictions"])
    params = None if blob["parameters"] is None else _decode_frame(blob["parameters"])
    if len(preds) == 0 or len(preds) % size or (per_fold and params is not None and len(params) % size):
        raise ValueError(f"{len(preds)} prediction rows for {size} folds")
    return Cell(i_config, size, i_repeat, status=STATUS_OK, error=str(header.get("error", "")),
                fit_seconds=float(header["fit_seconds"]), evaluations=int(header["evaluations"]),
                predictions=preds, parameters=params, cached=True, state=blob["state"])
