from . import plot as plot
from . import slurm as slurm
from ._sda import (
    Data as Data,
    Model as Model,
    SdaDivergedError as SdaDivergedError,
    SdaError as SdaError,
    SdaFileNotFoundError as SdaFileNotFoundError,
    SdaOSError as SdaOSError,
    SdaPermissionError as SdaPermissionError,
    SdaTypeError as SdaTypeError,
    SdaValueError as SdaValueError,
    __version__ as __version__,
    evaluate as evaluate,
    filter as filter,
    observe as observe,
    simulate as simulate,
    train as train,
)
