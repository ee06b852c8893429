"""sda: score-based data assimilation (Rozet & Louppe, NeurIPS 2023), from Python.

The Rust library behind the ``sda`` command line, with numpy arrays in and out. Every
function runs the same library code as the command of the same name, so both give the same
bits for the same settings and seed.

    data = sda.simulate("lorenz63", trajectories=1024, length=1024)
    model = sda.train(data, order=2, epochs=4096)
    y = sda.observe(data.test[0, :65], operator="stride:8|select:0", noise=0.4)
    x = model.assimilate(y, operator="stride:8|select:0", noise=0.4, length=65)
    pf = sda.filter(y, system=data, operator="stride:8|select:0", noise=0.4, length=65)
    sda.evaluate(x, reference=pf)["w1"]

Arrays are float32 ``(N, L, *state)`` in physical units; float64 input is converted, other
dtypes raise ``TypeError``. Bad values raise ``ValueError``, missing or unreadable files
``FileNotFoundError``/``OSError``, a sampling run that diverged ``sda.SdaDivergedError``
(``guard=False`` turns that check off), anything else ``sda.SdaError``; every one of them is also a
``sda.SdaError`` (``sda.SdaValueError`` is both a ``ValueError`` and a ``sda.SdaError``). Long calls release the GIL,
show a progress bar in a terminal (``progress=False`` hides it) and stop on Ctrl-C with
``KeyboardInterrupt``.
"""

from . import plot, slurm
from ._sda import (
    Data,
    Model,
    SdaDivergedError,
    SdaError,
    SdaFileNotFoundError,
    SdaOSError,
    SdaPermissionError,
    SdaTypeError,
    SdaValueError,
    __version__,
    evaluate,
    filter,
    observe,
    simulate,
    train,
)

__all__ = [
    "Data",
    "Model",
    "SdaDivergedError",
    "SdaError",
    "SdaFileNotFoundError",
    "SdaOSError",
    "SdaPermissionError",
    "SdaTypeError",
    "SdaValueError",
    "__version__",
    "evaluate",
    "filter",
    "observe",
    "plot",
    "simulate",
    "slurm",
    "train",
]
