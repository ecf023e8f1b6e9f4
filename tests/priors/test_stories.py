"""The break-free story: where each parameter leaves its prior's mode, said in one sentence per group."""

from __future__ import annotations

import math

import pandas as pd
import torch
from botorch.models import SingleTaskGP
from gpytorch.constraints import GreaterThan
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.kernels import RBFKernel, ScaleKernel
from gpytorch.priors import GammaPrior

import gpviz
from gpviz.priors.stories import break_free_sentences, key_features, key_stories
from gpviz.priors.judge import sweep_verdicts
from gpviz.priors.sweep_pull import sweep_prior_pull
from gpviz.priors.verdicts import AT_BOUND, FREE, SET, verdict_table
from tests.priors.test_verdicts import constructed_pull


def scale_rbf(train_X, train_Y):
    batch = train_X.shape[:-2]
    return SingleTaskGP(train_X, train_Y, covar_module=ScaleKernel(
        RBFKernel(ard_num_dims=train_X.shape[-1], batch_shape=batch, lengthscale_prior=GammaPrior(3.0, 6.0)),
        batch_shape=batch, outputscale_prior=GammaPrior(2.0, 0.15)))


def test_break_free_sentence_names_sizes_repeats_and_features():
    features = {f"covar_module.lengthscale[{j}]": f"f{j}" for j in range(24)}
    stories = key_stories(verdict_table(constructed_pull()), features)
    (sentence,) = break_free_sentences(stories).values()
    late = ", ".join(f"f{j}" for j in range(4, 24))
    assert sentence == (f"covar_module.lengthscale: 4 lengthscales leave the prior's mode at n = 40 in 4 of 4 "
                        f"repeats (f0, f1, f2, f3); 20 leave the prior's mode at n = 80 in 2 of 4 repeats ({late}).")


def test_key_features_reads_feature_names_from_the_expression():
    model = scale_rbf(torch.rand(5, 2), torch.rand(5, 1))
    feats = key_features(gpviz.model_expr(model, feature_names=["lr", "depth"]))
    assert feats == {"covar_module.base_kernel.lengthscale[0]": "lr", "covar_module.base_kernel.lengthscale[1]": "depth"}


def _labelled_pull():
    """Two lengthscales (labels ``lengthscale[lr]``, ``lengthscale[depth]``) and a noise at its lower bound 1e-6
    in every fold; ``lengthscale[depth]`` set by the prior in 2 folds of each size, ``lengthscale[lr]`` at a bound
    in 2 folds at n = 10."""
    rows = []
    for size in (6, 10):
        for i in range(size):
            depth = SET if i < 2 else FREE
            lr = AT_BOUND if (size == 10 and i < 2) else FREE
            for key, label, verdict, value in (
                    ("covar_module.lengthscale[0]", "lengthscale[lr]", lr, 0.025 if lr == AT_BOUND else 0.4),
                    ("covar_module.lengthscale[1]", "lengthscale[depth]", depth, 3.0),
                    ("likelihood.noise_covar.noise", "noise", AT_BOUND, 1e-6)):
                lower = 1e-6 if key.startswith("likelihood") else 0.025
                rows.append({"key": key, "label": label, "size": size, "i_repeat": 0, "i_model": i,
                             "prior": "LogNormalPrior", "verdict": verdict, "value": value, "lower": lower,
                             "upper": math.inf})
    return pd.DataFrame(rows)


def test_sentences_start_with_labels_and_say_every_verdict_with_counts():
    sentences = break_free_sentences(key_stories(verdict_table(_labelled_pull())))
    assert sentences["likelihood.noise_covar.noise"] == "noise sits at its lower bound (1e-06) at every size."
    assert sentences["covar_module.lengthscale"] == (
        "lengthscale: 2 lengthscales are never held at the prior's mode (0, 1); over every size: set by the prior "
        "away from its mode in 4 of 32 folds, at a bound in 2 of 32 folds.")


def test_a_sweep_whose_noise_sits_at_its_bound_says_so():
    """A real sweep of noiseless data, the noise without a prior: it goes to its lower bound (1e-6) in every fold."""
    torch.set_num_threads(1)
    X = torch.linspace(0, 1, 14, dtype=torch.float64).unsqueeze(-1)
    Y = torch.sin(4 * X)

    def plain(train_X, train_Y):
        noise = GaussianLikelihood(noise_constraint=GreaterThan(1e-6, transform=None),
                                   batch_shape=train_X.shape[:-2])
        return SingleTaskGP(train_X, train_Y, likelihood=noise)

    sweep = gpviz.cv_sweep(plain, X, Y, sizes=[8, 10], repeats=1, progress=False)
    pull = sweep_prior_pull(sweep)
    noise = pull[pull.key == "likelihood.noise_covar.noise"]
    assert (noise.verdict == AT_BOUND).all()  # the reference: every fold's noise on its bound
    judged = sweep_verdicts(sweep, sweep.expression())
    sentence = judged.sentences["likelihood.noise_covar.noise"]
    assert sentence.startswith("noise sits at its lower bound (")
    assert sentence.endswith(") at every size.") and "never held" not in sentence
