"""Type stubs of the native module (the docstrings are the module's own)."""

from os import PathLike
from typing import Any, Literal, Optional, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str

FloatArray = npt.NDArray[np.float32]
ArrayLike = Union[npt.NDArray[np.float32], npt.NDArray[np.float64]]
PathArg = Union[str, PathLike[str]]
Noise = Union[float, ArrayLike]
# Observations: an array y (with operator and noise), or a .csv table of time,index,value,std
# rows (a path; it brings its own operator and per-row noise).
Observations = Union[ArrayLike, PathArg]

class SdaError(Exception): ...
class SdaDivergedError(SdaError): ...
class SdaValueError(SdaError, ValueError): ...
class SdaTypeError(SdaError, TypeError): ...
class SdaFileNotFoundError(SdaError, FileNotFoundError): ...
class SdaPermissionError(SdaError, PermissionError): ...
class SdaOSError(SdaError, OSError): ...

class Data:
    @staticmethod
    def load(dir: PathArg) -> Data: ...
    @staticmethod
    def from_arrays(
        train: ArrayLike,
        valid: Optional[ArrayLike] = None,
        test: Optional[ArrayLike] = None,
        *,
        system: str = "external",
        split: Optional[tuple[float, float, float]] = None,
        seed: int = 0,
        context: Optional[ArrayLike] = None,
        layout: str = "vector",
        transform: Union[None, str, dict[Union[int, str], str]] = None,
    ) -> Data: ...
    @staticmethod
    def from_record(
        values: Union[ArrayLike, dict[str, ArrayLike]],
        *,
        time: ArrayLike,
        window: int,
        variables: Optional[list[str]] = None,
        coords: Optional[dict[str, ArrayLike]] = None,
        stations: Optional[Union[dict[str, Any], list[tuple[str, float, float]]]] = None,
        time_name: str = "time",
        time_units: Optional[str] = None,
        calendar: Optional[str] = None,
        units: Optional[dict[str, str]] = None,
        stride: int = 1,
        split_by_time: Optional[list[float]] = None,
        gaps: str = "drop",
        transform: Union[None, str, dict[str, str]] = None,
        origin: str = "numpy arrays",
    ) -> Data: ...
    @staticmethod
    def from_xarray(
        obj: Any,
        *,
        window: int,
        variables: Optional[list[str]] = None,
        time: Optional[str] = None,
        stride: int = 1,
        split_by_time: Optional[list[float]] = None,
        gaps: str = "drop",
        transform: Union[None, str, dict[str, str]] = None,
    ) -> Data: ...
    def save(self, dir: PathArg) -> None: ...
    @property
    def observed(self) -> Optional[tuple[FloatArray, FloatArray, Optional[FloatArray]]]: ...
    @property
    def mask(self) -> Optional[FloatArray]: ...
    @property
    def summary(self) -> Optional[str]: ...
    @property
    def train(self) -> FloatArray: ...
    @property
    def valid(self) -> FloatArray: ...
    @property
    def test(self) -> FloatArray: ...
    @property
    def context(self) -> Optional[FloatArray]: ...
    @property
    def system(self) -> str: ...
    @property
    def state_shape(self) -> list[int]: ...
    @property
    def description(self) -> dict[str, Any]: ...

class Model:
    @staticmethod
    def load(dir: PathArg) -> Model: ...
    def save(self, dir: PathArg) -> None: ...
    @property
    def config(self) -> dict[str, Any]: ...
    @property
    def state_shape(self) -> list[int]: ...
    @property
    def window(self) -> int: ...
    def assimilate(
        self,
        y: Observations,
        *,
        operator: Optional[str] = None,
        noise: Optional[Noise] = None,
        length: int = 65,
        samples: int = 64,
        batch: int = 64,
        preset: str = "stable",
        sampler: Optional[str] = None,
        steps: Optional[int] = None,
        grid: Optional[str] = None,
        eta: Optional[float] = None,
        corrections: Optional[int] = None,
        corrector: Optional[str] = None,
        tau: Optional[float] = None,
        delta: Optional[float] = None,
        likelihood: Optional[str] = None,
        solver: Optional[str] = None,
        iterations: Optional[int] = None,
        gamma: Optional[Union[float, str]] = None,
        zeta: Optional[float] = None,
        composition: str = "mean",
        precision: str = "auto",
        seed: int = 0,
        guard: bool = True,
        sampling: str = "joint",
        window: Optional[int] = None,
        context: Optional[int] = None,
        conditioning: str = "both",
        context_std: float = 0.1,
        calibration: int = 4,
        calibration_data: Optional[Union[Data, PathArg]] = None,
        progress: bool = True,
        start: Optional[str] = None,
        as_xarray: bool = False,
    ) -> Any: ...
    def sample(
        self,
        *,
        length: int = 65,
        samples: int = 64,
        batch: int = 64,
        preset: str = "stable",
        sampler: Optional[str] = None,
        steps: Optional[int] = None,
        grid: Optional[str] = None,
        eta: Optional[float] = None,
        corrections: Optional[int] = None,
        corrector: Optional[str] = None,
        tau: Optional[float] = None,
        delta: Optional[float] = None,
        composition: str = "mean",
        precision: str = "auto",
        seed: int = 0,
        guard: bool = True,
        sampling: str = "joint",
        window: Optional[int] = None,
        context: Optional[int] = None,
        conditioning: str = "both",
        context_std: float = 0.1,
        progress: bool = True,
        start: Optional[str] = None,
        as_xarray: bool = False,
    ) -> Any: ...

def simulate(
    system: str,
    *,
    trajectories: int = 1024,
    length: Optional[int] = None,
    burn_in: Optional[int] = None,
    seed: int = 0,
    size: Optional[int] = None,
    coarsen: Optional[int] = None,
    progress: bool = True,
) -> Data: ...
def train(
    data: Union[Data, ArrayLike],
    *,
    order: int = 2,
    epochs: int = 4096,
    seed: int = 0,
    output: Optional[PathArg] = None,
    progress: bool = True,
    system: Optional[str] = None,
    architecture: str = "local",
    global_length: int = 65,
    network: str = "auto",
    width: Optional[int] = None,
    depth: int = 5,
    preset: str = "paper",
    hidden: Optional[list[int]] = None,
    blocks: Optional[int] = None,
    kernel: Optional[int] = None,
    embedding: Optional[int] = None,
    batch_size: Optional[int] = None,
    lr: Optional[float] = None,
    weight_decay: float = 1e-3,
    schedule: str = "linear",
    noise_schedule: str = "cos",
    checkpoint_every: int = 64,
    resume: bool = False,
    engine: str = "auto",
    precision: str = "auto",
    ema: Optional[float] = None,
    precondition: bool = False,
) -> Model: ...
@overload
def observe(
    x: ArrayLike,
    *,
    operator: str,
    noise: Noise,
    seed: int = 0,
    fill: Optional[float] = None,
) -> FloatArray: ...
@overload
def observe(
    x: ArrayLike,
    *,
    noise: Union[float, tuple[float, float]],
    seed: int = 0,
    table: Literal[True],
    times: Optional[int] = None,
    stations: Optional[int] = None,
    output: PathArg,
) -> PathLike[str]: ...
def filter(
    y: Observations,
    *,
    system: Union[str, PathArg, Data],
    operator: Optional[str] = None,
    noise: Optional[Noise] = None,
    length: int = 65,
    particles: int = 16384,
    keep: int = 1024,
    burn_in: int = 64,
    seed: int = 0,
    progress: bool = True,
    method: str = "bpf",
    samples: int = 64,
    eofs: Optional[int] = None,
    start: Optional[str] = None,
    mean: bool = False,
) -> Union[FloatArray, tuple[FloatArray, FloatArray]]: ...
def evaluate(
    samples: ArrayLike,
    reference: Optional[ArrayLike] = None,
    truth: Optional[ArrayLike] = None,
    *,
    system: Union[None, str, PathArg, Data] = None,
    y: Optional[Observations] = None,
    operator: Optional[str] = None,
    noise: Optional[Noise] = None,
    hidden: bool = False,
    mask: Optional[ArrayLike] = None,
) -> dict[str, Any]: ...
def plot_trajectories(
    samples: ArrayLike,
    reference: Optional[ArrayLike] = None,
    truth: Optional[ArrayLike] = None,
    *,
    y: Optional[ArrayLike] = None,
    operator: Optional[str] = None,
    output: Optional[PathArg] = None,
) -> Union[PathLike[str], bytes]: ...
