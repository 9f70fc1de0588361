"""Types of the compiled thread locks (_locks.c); their contract is in hotpath/recorder/locks.py."""

from collections.abc import Callable
from types import CodeType
from typing import Any

Raw = tuple[int, int, int, dict[int, int]]

def configure(
    is_owned: CodeType,
    passing: tuple[CodeType, ...],
    timeout_max: float,
    find_thread: Callable[[], object],
) -> None: ...

class LockAccount:
    def __init__(self, log_limit: int) -> None: ...
    def raw(
        self,
    ) -> tuple[
        int, int, int, int, int, Raw, Raw, list[tuple[int, int, int, Any, CodeType | None]]
    ]: ...

class TrackedLock:
    def __init__(self, inner: Any, account: LockAccount) -> None: ...
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool: ...
    def release(self) -> None: ...
    def _hotpath_state(self) -> tuple[Any, int, int]: ...

class TrackedRLock(TrackedLock): ...
