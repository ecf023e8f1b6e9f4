"""The Ax tests' shared client: Ax imported or the module skipped, the tuning experiment, its trials.

Ax is imported inside the functions, so importing this module never needs Ax; a test module calls
:func:`require_ax` first (at its top), which skips it where the ``ax`` extra is not installed.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

LR = (1e-4, 1e-1)
MOMENTUM = (0.0, 0.99)
LAYERS = (1, 8)
OPTIMIZERS = ["sgd", "adam", "rmsprop"]
#: The model's column names gpviz reads from the search space of :func:`new_client`'s experiment.
NAMES = ["log10(lr)", "momentum", "layers", "optimizer=sgd", "optimizer=adam", "optimizer=rmsprop"]


def require_ax():
    """Ax's ``ax.api.client`` module; skips the calling test module without Ax (fails in CI, GPVIZ_REQUIRE_AX)."""
    try:
        import ax.api.client as client_module
    except ImportError:
        if os.environ.get("GPVIZ_REQUIRE_AX"):  # CI: the Ax tests must run, never skip
            pytest.fail("ax-platform is not installed; `bash scripts/run.sh test` installs gpviz[ax]", pytrace=False)
        pytest.skip("ax-platform (the `ax` extra) is not installed", allow_module_level=True)
    return client_module


def loss(p: dict) -> float:
    """A training loss with a best learning rate near 3e-3, momentum 0.8, 4 layers and adam."""
    return ((math.log10(p["lr"]) + 2.5) ** 2 + (p["momentum"] - 0.8) ** 2 + 0.05 * (p["layers"] - 4) ** 2
            + {"sgd": 0.3, "adam": 0.0, "rmsprop": 0.1}[p["optimizer"]])


def new_client(name: str = "tune", parameters: list | None = None):
    """A real Ax ``Client`` (seed 0) minimizing ``loss``: by default over lr (log-scaled), momentum, layers and
    the optimizer; ``parameters`` (Ax parameter configs) replaces that search space."""
    from ax.api.configs import ChoiceParameterConfig, RangeParameterConfig

    client = require_ax().Client(random_seed=0)
    if parameters is None:
        parameters = [
            RangeParameterConfig(name="lr", bounds=LR, parameter_type="float", scaling="log"),
            RangeParameterConfig(name="momentum", bounds=MOMENTUM, parameter_type="float"),
            RangeParameterConfig(name="layers", bounds=LAYERS, parameter_type="int"),
            ChoiceParameterConfig(name="optimizer", values=OPTIMIZERS, parameter_type="str", is_ordered=False),
        ]
    client.configure_experiment(name=name, parameters=parameters)
    client.configure_optimization(objective="-loss")
    return client


def run_trials(client, n: int, objective=loss) -> None:
    """``n`` trials Ax generates (one at a time), each completed with ``objective``."""
    for _ in range(n):
        for index, p in client.get_next_trials(max_trials=1).items():
            client.complete_trial(index, raw_data={"loss": objective(p)})


def attach_trials(client, n: int, seed: int) -> None:
    """Completed trials at seeded random points (as if run by hand): cheaper than Ax generating each."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        p = {"lr": float(10 ** rng.uniform(math.log10(LR[0]), math.log10(LR[1]))),
             "momentum": float(rng.uniform(*MOMENTUM)), "layers": int(rng.integers(LAYERS[0], LAYERS[1] + 1)),
             "optimizer": OPTIMIZERS[int(rng.integers(len(OPTIMIZERS)))]}
        index = client.attach_trial(parameters=p)
        client.complete_trial(index, raw_data={"loss": loss(p)})
