"""Types of the compiled recorder (_crecorder.c); its contract is in hotpath/recorder."""

from collections.abc import Callable, Sequence
from types import CodeType, FrameType
from typing import Any

from hotpath.store.functions import FunctionInfo, ThreadIdentity

CLOCK: str

def clock_ns() -> int: ...
def group_traces(traces: Sequence[Any]) -> dict[tuple[str, int], tuple[int, int]]: ...

class Recorder:
    def __init__(
        self,
        decide: Callable[[CodeType, FrameType | None], FunctionInfo | None],
        listener: Any,
        new_identity: Callable[[], ThreadIdentity],
        disable: object,
        log_limit: int,
        max_activations: int,
        count_allocations: bool = False,
    ) -> None: ...
    def on_start(self, code: CodeType, offset: int) -> object: ...
    def on_return(self, code: CodeType, offset: int, value: object) -> object: ...
    def on_unwind(self, code: CodeType, offset: int, exception: BaseException) -> object: ...
    def on_resume(self, code: CodeType, offset: int) -> object: ...
    def on_throw(self, code: CodeType, offset: int, exception: BaseException) -> object: ...
    def on_yield(self, code: CodeType, offset: int, value: object) -> object: ...
    def read(
        self, now_ns: int
    ) -> list[
        tuple[
            FunctionInfo,  # info
            int,  # completed
            int,  # all_ns
            int,  # total_ns
            int,  # child_ns
            int,  # active_ns
            int,  # starts
            int,  # errors
            int,  # min_ns
            int,  # max_ns
            dict[str, int] | None,  # error types
            dict[int, int],  # histogram buckets
            list[int] | None,  # the durations, while there are at most 16
            tuple[int, int, int, int],  # running, running_ns, running_own_ns, running_child_ns
            # allocations, None unless counting: (count, bytes) of every finished call, of the
            # outermost ones, of callees; the bytes-per-call histogram; and for calls in
            # progress: the outermost ones', their own, their callees'
            tuple[
                tuple[int, int],
                tuple[int, int],
                tuple[int, int],
                dict[int, int],
                tuple[int, int],
                tuple[int, int],
                tuple[int, int],
            ]
            | None,
        ]
    ]: ...
    def recent(
        self, info: FunctionInfo, limit: int
    ) -> list[tuple[int, int, ThreadIdentity, str | None, tuple[int, int] | None]]: ...
    def thread_allocations(self) -> list[tuple[int, int, int, bool]]: ...
    def start_counting(self) -> None: ...
    def held_call(self, func: Callable[..., Any], /, *args: Any) -> Any: ...
    def stop_counting(self) -> None: ...
    def live_threads(self) -> int: ...
    def open_activations(self) -> int: ...
    def given_up(self) -> int: ...

def read_proc_self() -> tuple[bytes, bytes, dict[int, bytes], int] | None: ...
