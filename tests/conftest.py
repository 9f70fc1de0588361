import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import RECORDER

from hotpath.recorder import compiled_unavailable


def pytest_report_header() -> str:
    return f"hotpath recorder under test: {RECORDER} (HOTPATH_RECORDER)"


def pytest_sessionstart(session: pytest.Session) -> None:
    # A suite started in the background by a non-interactive shell inherits SIGINT ignored,
    # and so would every program it starts (python keeps an inherited SIG_IGN, and so does
    # hotpath, as it must): the tests that press Ctrl-C then waited forever. Their programs
    # get Python's usual Ctrl-C.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # A suite meant for the compiled recorder must not pass on the fallback unnoticed.
    if RECORDER == "c" and (why := compiled_unavailable()) is not None:
        raise pytest.UsageError(f"HOTPATH_RECORDER=c, but {why}")
