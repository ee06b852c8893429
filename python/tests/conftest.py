"""Shared fixtures: a small Lorenz-63 data set and a briefly trained model (built once)."""

import numpy as np
import pytest

import sda

OPERATOR = "stride:8|select:0"


@pytest.fixture(scope="session")
def lorenz():
    return sda.simulate(
        "lorenz63", trajectories=256, length=64, burn_in=64, seed=1, progress=False
    )


@pytest.fixture(scope="session")
def model(lorenz):
    # Small enough to train in seconds; good enough for the observations to pull the samples.
    return sda.train(
        lorenz, order=2, width=64, depth=3, epochs=512, batch_size=32, seed=0, progress=False
    )


@pytest.fixture(scope="session")
def observation(lorenz):
    truth = lorenz.test[0, :33]
    y = sda.observe(truth, operator=OPERATOR, noise=0.4, seed=3)
    return truth, y


@pytest.fixture
def rng():
    return np.random.default_rng(0)
