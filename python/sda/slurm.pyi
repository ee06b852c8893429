from typing import Any, Optional, Sequence, Union
import os

def submit(
    command: Sequence[Union[str, int, float, os.PathLike]],
    *,
    array: int = 1,
    throttle: Optional[int] = None,
    time: Optional[str] = None,
    partition: Optional[str] = None,
    account: Optional[str] = None,
    gpus_per_task: Optional[int] = None,
    cpus_per_task: Optional[int] = None,
    force: bool = False,
    dry_run: bool = False,
    program: Optional[str] = None,
) -> Any: ...
def status(output: Union[str, os.PathLike], *, program: Optional[str] = None) -> dict: ...
def resubmit(output: Union[str, os.PathLike], *, program: Optional[str] = None) -> str: ...
