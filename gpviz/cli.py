"""The ``gpviz`` command line: ``gpviz demo --out DIR`` runs the whole tour on built-in data.

A little over 500 lines: each page of the tour is one step function here, and its prose sits
beside the call that makes the page, so a step reads top to bottom as the page it writes.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from botorch.cross_validation import gen_loo_cv_folds
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.kernels import MaternKernel, ScaleKernel
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import GammaPrior
from tqdm.auto import tqdm

import gpviz
from gpviz.charts import figure_to_img, figure_to_png
from gpviz.comparing import compare
from gpviz.datasets import hyperparameter_landscape
from gpviz.markup import Markup, as_html, escape_html
from gpviz.html.page import document, table_html
from gpviz.seeding import seeded
from gpviz.sweep.scores import score_table
from gpviz.words import plural

#: Dataset sizes, repeats and fold counts of the demo (default and ``--quick``).
DEFAULT_SIZES = (8, 16, 24, 32, 40)
DEFAULT_REPEATS = 4
QUICK_SIZES = (6, 10)
QUICK_REPEATS = 2

#: The two lengthscale priors the tour compares: BoTorch's former default
#: and a looser one with the same mode (1/3) and ~96x the variance.
STRONG_PRIOR = (3.0, 6.0)
LOOSE_PRIOR = (1.125, 0.375)


class UsageError(Exception):
    """A bad command-line option: printed as one line, exit code 2."""


@dataclass
class Settings:
    """What ``gpviz demo`` runs.

    Attributes:
        out: Folder the pages and charts are written to.
        sizes: Dataset sizes of the cross-validation sweeps, ascending.
        repeats: Random subsets per size.
        seed: Seed of the data and the subsets.
        fit_size: Points of the traced leave-one-out fit (that many folds).
        modes_size: Points of the batched-vs-separate comparison.
        maxiter: L-BFGS-B iteration cap per fold in the sweeps (keeps the tour short: a loose prior's
            folds can take hundreds of iterations for little change; ``None``: BoTorch's default).
        progress: Show progress bars.
        threads: Torch threads while the tour runs.
        workers: Worker processes of the sweeps and their verdicts (1: in this process).
    """

    out: Path
    sizes: tuple[int, ...]
    repeats: int
    seed: int
    fit_size: int
    modes_size: int
    maxiter: int | None = 100
    progress: bool = True
    threads: int = 1
    workers: int = 1
    data_size: int = field(init=False)

    def __post_init__(self):
        # subsets are drawn from a pool twice the largest size, so repeats differ
        self.data_size = max(2 * max(self.sizes), self.fit_size, self.modes_size, 40)

    @property
    def sweep_fit_kwargs(self) -> dict:
        """``fit_gpytorch_mll`` keyword arguments of the sweeps' fits."""
        if self.maxiter is None:
            return {}
        return {"optimizer_kwargs": {"options": {"maxiter": self.maxiter}}}


# --------------------------------------------------------------------------- #
# Models of the tour                                                          #
# --------------------------------------------------------------------------- #


def scale_matern(train_X, train_Y):
    """A (batched) SingleTaskGP with ``ScaleKernel(MaternKernel(ν = 5/2, ARD))``: BoTorch's former default model.

    Args:
        train_X: ``batch_shape x n x d`` inputs (a batch of leave-one-out folds, or one data set).
        train_Y: ``batch_shape x n x 1`` outputs.
    """

    batch = train_X.shape[:-2]
    covar = ScaleKernel(MaternKernel(nu=2.5, ard_num_dims=train_X.shape[-1], batch_shape=batch),
                        batch_shape=batch, outputscale_prior=GammaPrior(2.0, 0.15))
    return SingleTaskGP(train_X, train_Y, covar_module=covar)


def prior_factories() -> dict[str, Callable]:
    """Label -> model factory for the two lengthscale priors of the comparison."""
    return {
        f"Gamma({STRONG_PRIOR[0]:g}, {STRONG_PRIOR[1]:g}) lengthscale prior":
            gpviz.with_priors(scale_matern, lengthscale=GammaPrior(*STRONG_PRIOR)),
        f"Gamma({LOOSE_PRIOR[0]:g}, {LOOSE_PRIOR[1]:g}) lengthscale prior":
            gpviz.with_priors(scale_matern, lengthscale=GammaPrior(*LOOSE_PRIOR)),
    }


# --------------------------------------------------------------------------- #
# Pages                                                                       #
# --------------------------------------------------------------------------- #

_PAGE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 1.6rem; }
table { border-collapse: collapse; font-size: 0.9rem; } td, th { border: 1px solid #ccc; padding: 0.2rem 0.6rem; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f7f7f7; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
.failed { color: #a00; } .muted { color: #666; font-size: 0.9rem; }
ul.pages li { margin: 0.4rem 0; }
"""


_esc = escape_html


def page(title: str, body_html: Markup) -> str:
    """A small standalone page (UTF-8, no scripts) around gpviz-built ``body_html``; the title is escaped here."""
    return document(title, Markup(f"<h1>{_esc(title)}</h1>\n") + as_html(body_html) + Markup("\n"),
                    Markup(f"<style>{_PAGE_CSS}</style>\n"))


@dataclass
class Entry:
    """One thing the tour made: a page, chart or table, with one line on what it shows."""

    step: str
    path: Path | None
    what: str
    error: str = ""


@dataclass
class Tour:
    """Runs the demo's steps in order; a step that fails is reported and the tour goes on."""

    settings: Settings
    say: Callable[[str], None]
    entries: list[Entry] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def out(self, name: str) -> Path:
        return self.settings.out / name

    def add(self, step: str, path: Path | None, what: str) -> None:
        self.entries.append(Entry(step, path, what))
        if path is not None:
            self.say(f"  wrote {path}")

    def run_step(self, name: str, fn: Callable[[], None]) -> bool:
        start = time.perf_counter()
        try:
            fn()
            ok = True
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - one failing step must not hide the others
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            self.entries.append(Entry(name, None, "", error=detail))
            self.say(f"  step '{name}' failed: {detail}")
            ok = False
        self.timings[name] = time.perf_counter() - start
        return ok


@contextlib.contextmanager
def _quiet():
    """Silences warnings inside the tour's fits: BoTorch's numerical and input-data warnings would drown its output."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _savefig(fig, path: Path) -> Path:
    path.write_bytes(figure_to_png(fig))
    return path


def parameter_table(params) -> str:
    """A long parameter frame as the demo prints it: each parameter by the label its page shows.

    The page names a parameter ``lengthscale[log_learning_rate]``; the key
    (``covar_module.lengthscale[0]``) stays in the CSV beside it.

    Args:
        params: ``gpviz.parameters(model, names, long=True)``.
    """
    show = params[["label", "value", "prior", "prior_mode", "space"]].rename(columns={"label": "parameter"})
    return show.to_string(index=False, float_format=lambda v: f"{v:.4g}")


def run_demo(settings: Settings, say: Callable[[str], None] = print) -> Tour:
    """Runs the tour and writes every page, chart and table into ``settings.out``.

    Steps: (1) a model fitted on the built-in hyperparameter landscape, printed
    and drawn; (2) a traced leave-one-out fit (animated page, loss chart);
    (3) a cross-validation sweep across sizes (scaling curve beside the
    parameters per size); (4) two lengthscale priors compared; (5) batched vs
    joint vs separate fitting; (6) ``index.html`` linking all of it.

    Returns:
        The :class:`Tour` with what was written and how long each step took.
    """
    s = settings
    s.out.mkdir(parents=True, exist_ok=True)
    tour = Tour(s, say)
    data = hyperparameter_landscape(s.data_size, seed=s.seed)
    names = list(data.feature_names)
    factories = prior_factories()
    strong_label, loose_label = list(factories)
    make_strong = factories[strong_label]
    say(f"data: {data.description} ({data.X.shape[0]} points, {len(names)} inputs; "
        f"irrelevant: {', '.join(data.irrelevant)})")
    state: dict = {}

    def step_model():

        # BoTorch's default model on all the data: with enough points its ARD
        # lengthscales separate the five irrelevant inputs from the relevant ones.
        X, Y = data.X, data.Y
        n = X.shape[0]
        model = SingleTaskGP(X, Y)
        with _quiet():
            fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        expr = gpviz.model_expr(model, names)
        say("")
        say(expr.text())
        say("")
        params = gpviz.parameters(model, names, long=True)
        say(parameter_table(params))
        say("")
        (tour.out("model.txt")).write_text(expr.text() + "\n", encoding="utf-8")
        params.to_csv(tour.out("model_parameters.csv"), index=False)
        # sensitivity=True: the power-scaling diagnosis (gpviz.prior_sensitivity) beside each chart: at n = 80 the
        # five irrelevant inputs' lengthscales show prior sensitivities of 1.0-1.6, every other parameter's < 0.09
        # (about 1.3 s CPU)
        fig = gpviz.render(model, feature_names=names, sensitivity=True,
                           title=f"SingleTaskGP (BoTorch defaults) on the hyperparameter landscape, n = {n}")
        tour.add("model", fig.save(tour.out("model.html")),
                 f"BoTorch's default SingleTaskGP fitted on {n} points: its expression with every parameter drawn "
                 f"in place, and beside each its power-scaling sensitivity to the prior and to the data "
                 f"(gpviz.prior_sensitivity, ArviZ's psense). The irrelevant inputs get the longest lengthscales "
                 f"and by far the largest sensitivity to their prior: only the prior keeps them finite.")
        tour.add("model", tour.out("model.txt"), "The same expression as text.")
        tour.add("model", tour.out("model_parameters.csv"), "Its parameters: value, constraint, prior, units.")

    def step_fit():

        n = s.fit_size
        folds = gen_loo_cv_folds(data.X[:n], data.Y[:n])
        model = make_strong(folds.train_X, folds.train_Y)
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        with _quiet():
            with gpviz.trace_fit(mll, feature_names=names) as tracer:
                fit_gpytorch_mll(mll)
        summary = tracer.summary()
        waste = summary.attrs.get("waste", float("nan"))
        say(f"  traced {tracer.n_members} folds: {len(tracer.frames)} recorded rows, "
            f"{summary.attrs.get('evaluations', float('nan')):.0f} batched evaluations, "
            f"waste {waste:.2f}x (member-evaluations computed / needed)")
        tour.add("fit", tracer.render(title=f"Leave-one-out fit of {n} folds, step by step").save(tour.out("fit.html")),
                 f"A traced batched fit of {n} leave-one-out folds: press play to watch every fold's "
                 f"parameters move (waste {waste:.2f}x).")
        tour.add("fit", _savefig(tracer.plot(), tour.out("fit_loss.png")), "Loss per fold against the optimizer step.")
        summary.to_csv(tour.out("fit_summary.csv"), index=False)
        tour.add("fit", tour.out("fit_summary.csv"), "Per fold: the step it converged at and the evaluations it took.")

    def sweep(label: str, factory):
        with _quiet():
            return gpviz.cv_sweep(factory, data.X, data.Y, list(s.sizes), s.repeats, seed=s.seed, progress=s.progress,
                                  fit_kwargs=s.sweep_fit_kwargs or None, workers=s.workers, threads=s.threads)

    def step_sweep():
        sw = sweep(strong_label, make_strong)
        state["strong"] = sw
        bands = sw.summary("mse")
        say(bands.to_string(float_format=lambda v: f"{v:.4g}"))
        fig = sw.render(feature_names=names,
                        title=f"Leave-one-out sweep, {strong_label}: n = {', '.join(map(str, s.sizes))}, "
                              f"{s.repeats} repeats")
        tour.add("sweep", fig.save(tour.out("sweep.html")),
                 "The parameters of every fold, one labelled band per dataset size, beside the scaling curve.")
        tour.add("sweep", _savefig(sw.plot(), tour.out("scaling_curve.png")),
                 "The scaling curve: held-out error per size (10th/90th percentile and geometric mean).")
        sw.scores.to_csv(tour.out("sweep_scores.csv"), index=False)
        sw.parameters.to_csv(tour.out("sweep_parameters.csv"), index=False)
        tour.add("sweep", tour.out("sweep_scores.csv"), "Scores per size and repeat.")
        tour.add("sweep", tour.out("sweep_parameters.csv"), "Fitted parameters per size, repeat and fold.")

    def step_priors():

        strong = state.get("strong") or sweep(strong_label, make_strong)
        loose = sweep(loose_label, factories[loose_label])
        cmp = compare({strong_label: strong, loose_label: loose}, feature_names=names, workers=s.workers,
                      title=f"Two lengthscale priors: {strong_label} vs {loose_label}")
        table = score_table({strong_label: strong, loose_label: loose}, "mse")
        say(table.to_string(float_format=lambda v: f"{v:.4g}"))
        tour.add("priors", cmp.save(tour.out("priors.html")),
                 "Both priors side by side: scaling curves on one chart, parameters per size, and which "
                 "parameters the prior holds.")
        table.to_csv(tour.out("priors_scores.csv"))
        tour.add("priors", tour.out("priors_scores.csv"), "Held-out error per size for each prior.")

    def step_modes():
        n = s.modes_size
        with _quiet():
            table = gpviz.compare_fit_modes(make_strong, data.X[:n], data.Y[:n])
        say(table.to_string(float_format=lambda v: f"{v:.4g}"))
        chart = table.chart()
        body = Markup(f"<p>The same {n} leave-one-out folds fit three ways: one batched model on BoTorch's default "
                      f"path (one L-BFGS-B per fold, every fold computed in every evaluation), the same batch "
                      f"optimized jointly on the summed loss, and one model per fold. <b>{escape_html(table.lead())}"
                      f"</b></p><ul>{''.join(f'<li>{escape_html(x)}</li>' for x in table.explain().values())}</ul>"
                      f"{figure_to_img(chart, alt='member-evaluations and wall time per fit mode')}"
                      f"{table_html(table)}"
                      f"<p class=\"muted\">waste = member-evaluations computed / needed by each fold's own "
                      f"convergence in that mode; work_vs_fewest = member-evaluations / the fewest.</p>")
        path = tour.out("fit_modes.html")
        path.write_text(page(f"Batched vs joint vs separate fitting of {n} folds", body), encoding="utf-8")
        tour.add("fit modes", path, "Batched vs joint vs separate fitting: evaluations and wall time.")
        tour.add("fit modes", _savefig(chart, tour.out("fit_modes.png")), "The same as a chart.")
        table.to_csv(tour.out("fit_modes.csv"))
        tour.add("fit modes", tour.out("fit_modes.csv"), "The table as CSV.")

    steps = [
        ("model", "a fitted model, printed and drawn", step_model),
        ("fit", f"a traced leave-one-out fit ({s.fit_size} folds)", step_fit),
        ("sweep", f"a CV sweep, sizes {list(s.sizes)} x {s.repeats} repeats", step_sweep),
        ("priors", "two lengthscale priors compared", step_priors),
        ("fit modes", f"batched vs joint vs separate fitting ({s.modes_size} folds)", step_modes),
    ]

    old_dtype, old_threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float64)
    # The tour's matrices are tiny (tens of points): with several threads torch
    # spends more time synchronizing than computing (measured 3-4x slower on a
    # busy 2-core machine), so one thread unless asked otherwise.
    torch.set_num_threads(s.threads)
    bar = tqdm(total=len(steps), desc="gpviz demo", unit="step", disable=not s.progress, leave=True)
    try:
        for i, (name, what, fn) in enumerate(steps, 1):
            bar.set_postfix_str(name)
            say(f"[{i}/{len(steps)}] {what}")
            # BoTorch resamples parameters from their priors when a fit attempt fails, from
            # torch's global generator: seed it per step so each page is reproducible alone, and give the
            # caller's generators back afterwards (`gpviz.cli.main` may run inside a user's process)
            with seeded(s.seed):
                tour.run_step(name, fn)
            bar.update(1)
    finally:
        bar.close()
        torch.set_default_dtype(old_dtype)
        torch.set_num_threads(old_threads)
    index = tour.out("index.html")
    index.write_text(index_html(tour), encoding="utf-8")
    tour.add("index", index, "This page.")
    return tour


def index_html(tour: Tour) -> str:
    """The tour's front page: every page, chart and table, linked with one line each."""
    s = tour.settings
    groups: dict[str, list[Entry]] = {}
    for e in tour.entries:
        groups.setdefault(e.step, []).append(e)
    titles = {"model": "1. A model as its own code", "fit": "2. Watching a fit",
              "sweep": "3. Cross-validation across dataset sizes", "priors": "4. Prior strength",
              "fit modes": "5. Batched vs separate fitting"}
    parts = [f"<p>The gpviz tour on the built-in <em>hyperparameter landscape</em> (10 inputs, 5 of them "
             f"irrelevant, one categorical): sizes {_esc(list(s.sizes))}, {s.repeats} repeats, seed {s.seed}."
             f" Open the pages below; everything works offline.</p>"]
    for step, title in titles.items():
        parts.append(f"<h2>{_esc(title)}</h2><ul class=\"pages\">")
        for e in groups.get(step, []):
            if e.error:
                parts.append(f'<li class="failed">this step failed: <code>{_esc(e.error)}</code></li>')
            elif e.path is not None:
                rel = e.path.name
                parts.append(f'<li><a href="{html.escape(rel, quote=True)}">{_esc(rel)}</a>: {_esc(e.what)}</li>')
        if step in tour.timings:
            parts.append(f'<li class="muted">took {tour.timings[step]:.1f} s</li>')
        parts.append("</ul>")
    total = sum(tour.timings.values())
    parts.append(f'<p class="muted">Made by <code>gpviz demo</code> in {total:.0f} s.</p>')
    return page("gpviz demo", Markup("\n".join(parts)))  # every user string in parts went through _esc


# --------------------------------------------------------------------------- #
# Command line                                                                #
# --------------------------------------------------------------------------- #


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of printing usage and exiting."""

    def error(self, message):
        raise UsageError(message)


def _positive_int(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The ``gpviz`` argument parser."""
    p = _Parser(prog="gpviz", description="See a BoTorch/GPyTorch Gaussian-process model as its own code.")
    p.add_argument("--version", action="version", version=f"gpviz {gpviz.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    d = sub.add_parser("demo", help="run the tour on built-in data and write HTML pages and charts",
                       description="Runs the gpviz tour on a built-in synthetic data set: a fitted model, a traced "
                                   "fit, a cross-validation sweep across sizes, two priors compared, and batched vs "
                                   "separate fitting. Writes HTML pages, PNG charts and CSV tables, and index.html.")
    d.add_argument("--out", default="gpviz-demo", help="folder for the pages (default: %(default)s)")
    d.add_argument("--quick", action="store_true", help="a smaller, faster tour (for CI; under a minute)")
    d.add_argument("--sizes", type=_positive_int(3), nargs="+", metavar="N",
                   help=f"dataset sizes of the sweeps (default {' '.join(map(str, DEFAULT_SIZES))}; "
                        f"quick {' '.join(map(str, QUICK_SIZES))})")
    d.add_argument("--repeats", type=_positive_int(1), metavar="N",
                   help=f"random subsets per size (default {DEFAULT_REPEATS}; quick {QUICK_REPEATS})")
    d.add_argument("--seed", type=_positive_int(0), default=0, metavar="S", help="seed of data and subsets")
    d.add_argument("--maxiter", type=_positive_int(0), default=100, metavar="N",
                   help="L-BFGS-B iterations per fold in the sweeps (default %(default)s; 0: no cap)")
    d.add_argument("--threads", type=_positive_int(1), default=1, metavar="N",
                   help="torch threads (default 1: faster for the tour's small matrices)")
    d.add_argument("--workers", type=_positive_int(1), default=1, metavar="N", help="worker processes of the sweeps and their verdicts")
    d.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def settings_from(args) -> Settings:
    """Settings of the demo from parsed options.

    Raises:
        UsageError: a bad combination of options or an unusable output folder.
    """
    quick = bool(args.quick)
    sizes = tuple(sorted(set(args.sizes))) if args.sizes else (QUICK_SIZES if quick else DEFAULT_SIZES)
    if max(sizes) > 200:
        raise UsageError(f"--sizes: at most 200 points per sweep cell in the demo, got {max(sizes)}")
    repeats = args.repeats if args.repeats is not None else (QUICK_REPEATS if quick else DEFAULT_REPEATS)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: {str(out)!r} exists and is not a folder")
    return Settings(out=out, sizes=sizes, repeats=repeats, seed=args.seed, fit_size=8 if quick else 16,
                    modes_size=6 if quick else 10, maxiter=args.maxiter or None, progress=not args.no_progress,
                    threads=args.threads, workers=args.workers)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gpviz`` console script and ``python -m gpviz``.

    Returns:
        0 on success, 1 if a step of the demo failed, 2 for bad options, 130 on Ctrl-C.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        settings = settings_from(args)
    except UsageError as exc:
        print(f"gpviz: error: {exc}", file=sys.stderr)
        print("run 'gpviz demo --help' for the options", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
    
        # tqdm.write prints above the progress bars instead of through them
        tour = run_demo(settings, say=tqdm.write if settings.progress else print)
    except KeyboardInterrupt:
        print("\ngpviz demo: interrupted; pages written so far are in "
              f"{settings.out.resolve()}", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"gpviz: error: cannot write to {str(settings.out)!r}: {exc}", file=sys.stderr)
        return 2
    failed = [e for e in tour.entries if e.error]
    print(f"\ngpviz demo finished in {time.perf_counter() - start:.0f} s: "
          f"open {(settings.out / 'index.html').resolve()}")
    if failed:
        print(f"{plural(len(failed), 'step')} failed: {', '.join(e.step for e in failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
