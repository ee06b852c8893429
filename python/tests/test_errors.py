"""Bad input gets a Python exception with a one-line message naming what was wrong, never a
crash of the interpreter; every exception of sda is also a sda.SdaError."""

import json
import subprocess
import sys
import signal
import threading
import time

import numpy as np
import pytest

import sda
from conftest import OPERATOR


def raises(kind, match, f, *args, **kwargs):
    with pytest.raises(kind, match=match) as info:
        f(*args, **kwargs)
    assert isinstance(info.value, sda.SdaError), type(info.value).__mro__
    assert "\n" not in str(info.value)
    return info.value


def test_wrong_dtype_is_a_type_error_naming_the_argument(model, observation):
    _, y = observation
    raises(TypeError, r"^y: .*dtype int64", model.assimilate, y.astype(np.int64),
           operator=OPERATOR, noise=0.4, length=33)
    raises(TypeError, r"^y: .*got list", model.assimilate, y.tolist(), operator=OPERATOR,
           noise=0.4, length=33)
    raises(TypeError, r"^train: .*dtype bool", sda.Data.from_arrays,
           np.zeros((4, 8, 3), bool), system="lorenz63")
    raises(TypeError, r"^samples: ", sda.evaluate, np.zeros((2, 3, 3), np.int32))
    raises(TypeError, r"^noise: ", model.assimilate, y, operator=OPERATOR,
           noise=np.full(y.shape, 1, np.int8), length=33)


def test_bad_shapes_and_values_are_value_errors(model, observation):
    _, y = observation
    kw = dict(operator=OPERATOR, noise=0.4, length=33, samples=2, steps=2, progress=False)
    raises(ValueError, r"^y: expected shape \(5, 1\)", model.assimilate, y[:, 0], **kw)
    raises(ValueError, r"^y: expected shape \(5, 1\)", model.assimilate, y[:3], **kw)
    bad = y.copy()
    bad[1, 0] = np.nan
    raises(ValueError, r"^y: contains 1 non-finite", model.assimilate, bad, **kw)
    raises(ValueError, r"^noise: .*positive", model.assimilate, y,
           **{**kw, "noise": -0.4})
    raises(ValueError, r"^operator 'stride:8\|nope'", model.assimilate, y,
           **{**kw, "operator": "stride:8|nope"})
    raises(ValueError, r"^length: 3 states is shorter than the model's window of 5",
           model.assimilate, np.zeros((1, 3), np.float32),
           **{**kw, "length": 3, "operator": "last"})
    raises(ValueError, r"^likelihood: unknown value 'gauss'", model.assimilate, y,
           **kw, likelihood="gauss")
    raises(ValueError, r"^preset: unknown value 'best'", model.assimilate, y,
           **kw, preset="best")
    raises(ValueError, r"^eta: applies to", model.assimilate, y, **kw, eta=0.5)
    raises(ValueError, r"^iterations: must be at least 1", model.assimilate, y,
           **kw, likelihood="mmps", iterations=0)
    raises(ValueError, r"^composition: unknown value 'median' \(known: centre, mean\)",
           model.assimilate, y, **kw, composition="median")
    raises(ValueError, r"^samples: must be at least 1", model.assimilate, y,
           **{**kw, "samples": 0})
    raises(ValueError, r"^unknown system 'lorenz64'", sda.simulate, "lorenz64")
    raises(ValueError, r"^trajectories: needs at least 3", sda.simulate, "linear",
           trajectories=2)
    raises(ValueError, r"^train: expected shape \(N, L, 3\)", sda.Data.from_arrays,
           np.zeros((4, 8, 2), np.float32), system="lorenz63")
    raises(ValueError, r"^system: name the system", sda.train, np.zeros((4, 8, 3)))
    raises(ValueError, r"^epochs: must be at least 1", sda.train,
           np.ones((5, 8, 3), np.float32), system="lorenz63", epochs=0)
    raises(ValueError, r"^keep: ", sda.filter, y, system="lorenz63", operator=OPERATOR,
           noise=0.4, length=33, particles=8, keep=16, progress=False)
    x = np.zeros((2, 33, 3), np.float32)
    raises(ValueError, r"^mask: of shape \(5\), not a state's \(3\) or a trajectory's \(33, 3\)",
           sda.evaluate, x, mask=np.ones(5, np.float32))
    raises(ValueError, r"^mask: no value of the trajectory is left to score", sda.evaluate, x,
           mask=np.zeros(3, np.float32))


def test_missing_and_broken_files_are_os_errors(tmp_path, model):
    raises(FileNotFoundError, str(tmp_path / "nope"), sda.Model.load, tmp_path / "nope")
    raises(FileNotFoundError, "system.json", sda.Data.load, tmp_path)
    raises(FileNotFoundError, "no such data folder", sda.filter, np.zeros((5, 1)),
           system=str(tmp_path / "none" / "system.json"), operator=OPERATOR, noise=0.4,
           length=33)
    # A config.json that is not JSON, then weights that are not safetensors.
    model.save(tmp_path / "run")
    cfg = tmp_path / "run" / "config.json"
    good = cfg.read_text()
    cfg.write_text("{ not json")
    e = raises(OSError, "config.json", sda.Model.load, tmp_path / "run")
    assert not isinstance(e, FileNotFoundError)
    cfg.write_text(good)
    (tmp_path / "run" / "model.safetensors").write_bytes(b"garbage")
    raises(OSError, "model.safetensors", sda.Model.load, tmp_path / "run")
    json.loads(good)


@pytest.fixture
def sigint():
    # Python raises KeyboardInterrupt on SIGINT only if SIGINT was not ignored when it started,
    # and a shell's background jobs (`cmd &`) start with it ignored: install the handler here.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_interrupts_a_long_call_cleanly(model, sigint):
    # A SIGINT from another thread while the sampler runs: KeyboardInterrupt within a few
    # steps, and the interpreter and the model carry on.
    timer = threading.Timer(0.5, signal.raise_signal, (signal.SIGINT,))
    t0 = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        model.sample(length=65, samples=64, steps=100_000, progress=False)
    elapsed = time.monotonic() - t0
    timer.join()
    assert elapsed < 20, elapsed
    x = model.sample(length=9, samples=2, steps=2, guard=False, progress=False)
    assert np.isfinite(x).all()


def test_interrupted_training_leaves_no_half_written_file(lorenz, tmp_path, sigint):
    timer = threading.Timer(1.0, signal.raise_signal, (signal.SIGINT,))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        sda.train(lorenz, width=32, depth=1, epochs=1_000_000, checkpoint_every=1,
                  output=tmp_path / "run", progress=False)
    timer.join()
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert not any(".tmp" in n for n in names), names
    # What was written is whole: the run resumes from its checkpoint.
    assert "config.json" in names
    json.loads((tmp_path / "run" / "config.json").read_text())


def test_the_gil_is_released_while_computing(model):
    # A Python thread keeps counting while the sampler runs in another.
    count = 0
    done = threading.Event()
    result = []

    def work():
        result.append(model.sample(length=65, samples=16, steps=64, progress=False))

    def run():
        try:
            work()
        finally:
            done.set()

    t = threading.Thread(target=run)
    t.start()
    while not done.is_set():
        count += 1
        time.sleep(0.001)
    t.join()
    assert result and result[0].shape == (16, 65, 3)
    assert count > 20, count


def test_zero_or_negative_gamma_and_zero_noise_are_value_errors(model, observation):
    _, y = observation
    kw = dict(operator=OPERATOR, noise=0.4, length=33, samples=2, steps=2, progress=False)
    for gamma in (0.0, -0.1):
        raises(ValueError, r"^gamma: must be positive", model.assimilate, y, **kw, gamma=gamma)
    raises(ValueError, r"^noise: .*positive", model.assimilate, y, **{**kw, "noise": 0.0})


def test_a_diverging_run_raises_and_guard_false_hands_over_its_samples(model, observation):
    # Observations of std 0.001 and gamma = 1e-9: the likelihood's variance is far below what
    # an Euler step of the sampler can follow, and the iterates run away.
    _, y = observation
    kw = dict(operator=OPERATOR, noise=0.001, length=33, samples=2, steps=16, gamma=1e-9,
              progress=False)
    e = raises(sda.SdaDivergedError, r"^sampling diverged at step \d+ of 16 \(noise level t = ",
               model.assimilate, y, **kw)
    # The advice names the package's keywords, not the command line's flags.
    assert "larger gamma" in str(e) and "guard=False" in str(e) and "--" not in str(e), e
    x = model.assimilate(y, **kw, guard=False)
    assert x.shape == (2, 33, 3)
    # Lorenz-63 stays within |x| < 60: what the guard refused is far outside it (or NaN).
    assert not (np.abs(x) < 1e3).all()


def test_a_killed_python_training_leaves_whole_files_and_resumes(tmp_path):
    # SIGKILL (no chance to clean up) in the middle of sda.train from a Python process: every
    # file left is whole, and the run resumes from the checkpoint to the end.
    script = (
        "import sda, sys\n"
        "d = sda.simulate('lorenz63', trajectories=1024, length=64, seed=1, progress=False)\n"
        "d.save(sys.argv[1] + '/data')\n"
        "print('ready', flush=True)\n"
        "sda.train(d, width=256, depth=3, epochs=300, checkpoint_every=1,\n"
        "          output=sys.argv[1] + '/run', progress=False)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE)
    assert p.stdout.readline().strip() == b"ready"
    deadline = time.monotonic() + 60
    while not (tmp_path / "run" / "checkpoint.json").exists():
        assert time.monotonic() < deadline and p.poll() is None
        time.sleep(0.05)
    # Some 300 epochs of tens of milliseconds each are left: the kill lands in the middle.
    time.sleep(0.2)
    p.send_signal(signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL, "the run ended before it was killed"
    run = tmp_path / "run"
    ckpt = json.loads((run / "checkpoint.json").read_text())
    done = ckpt["epochs_done"]
    assert 1 <= done < 300
    # Every file is whole (hidden .NAME.tmpPID files are writes that were in progress).
    json.loads((run / "config.json").read_text())
    assert (run / "stats.csv").read_text().count("\n") in (done + 1, done + 2)
    data = sda.Data.load(tmp_path / "data")
    m = sda.train(data, width=256, depth=3, epochs=300, checkpoint_every=1,
                  output=run, resume=True, progress=False)
    assert json.loads((run / "checkpoint.json").read_text())["epochs_done"] == 300
    # The resumed run cleared what the killed one had in progress.
    assert not any(".tmp" in f.name for f in run.iterdir()), sorted(run.iterdir())
    assert m.sample(length=9, samples=2, steps=8, guard=False, progress=False).shape == (2, 9, 3)
