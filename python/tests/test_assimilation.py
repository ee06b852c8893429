"""End to end from Python: Lorenz-63 train → assimilate → evaluate against the particle filter,
and the linear-Gaussian system against the exact posterior of a Kalman/RTS smoother."""

import numpy as np
import pytest

import sda
from conftest import OPERATOR


def test_lorenz63_train_assimilate_evaluate(model, observation, lorenz):
    truth, y = observation
    length = truth.shape[0]
    kw = dict(length=length, samples=64, steps=64, corrections=1, seed=0, progress=False)
    x = model.assimilate(y, operator=OPERATOR, noise=0.4, **kw)
    prior = model.sample(**kw)
    assert x.shape == (64, length, 3) and x.dtype == np.float32
    pf = sda.filter(y, system=lorenz, operator=OPERATOR, noise=0.4, length=length,
                    particles=4096, keep=256, seed=0, progress=False)
    assert pf.shape == (256, length, 3)
    post = sda.evaluate(x, pf, truth[None], system="lorenz63", y=y, operator=OPERATOR,
                        noise=0.4)
    free = sda.evaluate(prior, pf, truth[None], system="lorenz63", y=y, operator=OPERATOR,
                        noise=0.4)
    assert post["samples"] == 64 and post["failed"] == 0
    # The observations pull the samples toward the filter's posterior and the truth.
    assert post["w1"] < 0.7 * free["w1"], (post["w1"], free["w1"])
    assert post["rmse"] < 0.7 * free["rmse"], (post["rmse"], free["rmse"])
    assert post["log_py"] > free["log_py"]
    assert sum(post["rank_histogram"]) == length * 3
    # Same seed, same bits; another seed, other samples.
    assert np.array_equal(x, model.assimilate(y, operator=OPERATOR, noise=0.4, **kw))
    assert not np.array_equal(x, model.assimilate(y, operator=OPERATOR, noise=0.4,
                                                  **{**kw, "seed": 1}))


def test_presets_samplers_and_mmps_run_as_on_the_command_line(model, observation):
    truth, y = observation
    # 16 steps of a briefly trained prior diverge (the guard would refuse them): the settings
    # are the point here, not the samples.
    kw = dict(length=truth.shape[0], samples=8, seed=0, guard=False, progress=False)
    # The stable preset is the default: naming it changes nothing, and it is the paper's
    # sampler with MMPS (one CG iteration).
    base = model.assimilate(y, operator=OPERATOR, noise=0.4, steps=16, **kw)
    assert np.array_equal(base, model.assimilate(y, operator=OPERATOR, noise=0.4, steps=16,
                                                 preset="stable", **kw))
    assert np.array_equal(base, model.assimilate(y, operator=OPERATOR, noise=0.4, steps=16,
                                                 preset="paper", likelihood="mmps", **kw))
    # gamma alone chooses SDA's likelihood: the paper preset's.
    assert np.array_equal(
        model.assimilate(y, operator=OPERATOR, noise=0.4, steps=16, gamma=0.03, **kw),
        model.assimilate(y, operator=OPERATOR, noise=0.4, steps=16, preset="paper", **kw))
    for extra in [dict(preset="accurate", steps=16), dict(preset="paper", steps=16),
                  dict(likelihood="mmps", iterations=2, sampler="eab2", grid="logsnr",
                       steps=16, corrections=0),
                  dict(sampler="ddim", eta=1.0, steps=16, corrector="fixed", delta=0.1)]:
        x = model.assimilate(y, operator=OPERATOR, noise=0.4, **extra, **kw)
        assert x.shape == base.shape and np.isfinite(x).all(), extra
        assert not np.array_equal(x, base), extra


def rts_smoother(spring, length, times, y, noise):
    """The exact p(x_i | y) of the damped spring observed in its first coordinate."""
    h, w2, c = spring["dt"], spring["omega"] ** 2, 2 * spring["zeta"] * spring["omega"]
    v = np.array([-h * w2, 1 - h * c])
    F = np.array([[1 + h * v[0], h * v[1]], v])
    Q = np.eye(2) * spring["noise"] ** 2
    P = Q.copy()
    for _ in range(100_000):
        P = F @ P @ F.T + Q
    H = np.array([[1.0, 0.0]])
    R = np.array([[noise**2]])
    m, p = np.zeros(2), P
    mf, pf, mp, pp = [], [], [], []
    obs = dict(zip(times, y[:, 0]))
    for i in range(length):
        if i > 0:
            m, p = F @ m, F @ p @ F.T + Q
        mp.append(m)
        pp.append(p)
        if i in obs:
            s = H @ p @ H.T + R
            k = p @ H.T @ np.linalg.inv(s)
            m = m + (k @ (obs[i] - H @ m)).ravel()
            p = p - k @ H @ p
        mf.append(m)
        pf.append(p)
    ms, ps = [mf[-1]], [pf[-1]]
    for i in range(length - 2, -1, -1):
        g = pf[i] @ F.T @ np.linalg.inv(pp[i + 1])
        ms.insert(0, mf[i] + g @ (ms[0] - mp[i + 1]))
        ps.insert(0, pf[i] + g @ (ps[0] - pp[i + 1]) @ g.T)
    return np.array(ms), np.array(ps)


def test_linear_gaussian_posterior_matches_the_kalman_smoother():
    data = sda.simulate("linear", trajectories=256, length=64, burn_in=64, seed=2,
                        progress=False)
    model = sda.train(data, order=2, width=64, depth=3, epochs=512, batch_size=32, seed=0,
                      progress=False)
    length, operator, noise = 25, "stride:4|select:0", 0.1
    truth = data.test[0, :length]
    y = sda.observe(truth, operator=operator, noise=noise, seed=1)
    x = model.assimilate(y, operator=operator, noise=noise, length=length, samples=256,
                         steps=128, corrections=1, seed=0, progress=False)
    spring = data.description["system"]
    mean, cov = rts_smoother(spring, length, list(range(0, length, 4)), y, noise)
    std = np.sqrt(np.stack([np.diag(c) for c in cov]))
    sample_mean, sample_std = x.mean(0), x.std(0)
    # The posterior mean, in posterior stds, and the spread, against the exact posterior.
    z = np.abs(sample_mean - mean) / std
    ratio = sample_std / std
    assert z.mean() < 0.5, z.mean()
    assert 0.6 < np.median(ratio) < 1.6, np.median(ratio)
    # The check has teeth: prior samples are far from the posterior in both respects.
    prior = model.sample(length=length, samples=256, steps=128, seed=0, progress=False)
    z_prior = np.abs(prior.mean(0) - mean) / std
    assert z_prior.mean() > 1.0, z_prior.mean()
    assert np.median(prior.std(0) / std) > 1.5


def test_auto_gamma_runs_one_of_its_candidates_and_refuses_without_validation_data(
    model, observation, lorenz, tmp_path
):
    _, y = observation
    kw = dict(operator=OPERATOR, noise=0.4, length=33, samples=4, steps=32, seed=5,
              progress=False)
    # A model trained in memory names no data folder: the trajectories must be given.
    with pytest.raises(ValueError, match=r"^gamma=\"auto\": .*calibration_data"):
        model.assimilate(y, **kw, gamma="auto")
    with pytest.raises(ValueError, match=r"calibration=0"):
        model.assimilate(y, **kw, gamma="auto", calibration=0, calibration_data=lorenz)
    with pytest.raises(ValueError, match=r"go with gamma=\"auto\" only"):
        model.assimilate(y, **kw, calibration=2)
    x = model.assimilate(y, **kw, gamma="auto", calibration=2, calibration_data=lorenz)
    # The samples are those of a fixed gamma among the candidates, bit for bit.
    same = [g for g in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
            if np.array_equal(x, model.assimilate(y, **kw, gamma=g, guard=False))]
    assert len(same) >= 1, "auto gamma ran none of its candidates"
    # A data folder works as calibration_data too.
    lorenz.save(tmp_path / "data")
    x2 = model.assimilate(y, **kw, gamma="auto", calibration=2, calibration_data=tmp_path / "data")
    assert np.array_equal(x, x2)
