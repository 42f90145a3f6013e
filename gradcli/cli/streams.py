"""When standard output cannot take what gradcli writes: a reader that left, a full disk.

Both entry points (the quick path of entry.py and the full command line of app.py) end through
here, so that `gradcli check | head` ends as command-line tools do when their reader leaves
(killed by SIGPIPE: status 141 in a shell, quietly), and `gradcli eval … > /dev/full` is one
line on stderr and exit code 2, never a traceback or "internal error".
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from typing import NoReturn

EXIT_USAGE = 2
# The errors a write to a file, pipe or device can end with; reading never gives these.
WRITE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EBADF}
)


def is_write_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS


def pacified(stream: object) -> bool:
    """Whether Click caught a closed pipe: it then wraps the streams so that flushing them is
    quiet, and exits with status 1, which in CI reads as "a check failed"."""
    return type(stream).__name__ == "PacifyFlushWrapper"


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, AttributeError, ValueError):
        pass  # no file descriptor (a test's stream): nothing will be flushed to it anyway


def reader_left() -> NoReturn:
    """The reader of stdout closed the pipe: end as `yes | head` does, killed by SIGPIPE."""
    _silence_stdout()
    if hasattr(signal, "SIGPIPE"):
        sys.stderr.flush()
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGPIPE)
    os._exit(128 + 13)  # no SIGPIPE (Windows): the status a shell would show for it


def write_failed(exc: OSError) -> NoReturn:
    """Output that could not be written: say so on stderr in one line, exit 2."""
    _silence_stdout()
    try:
        sys.stderr.write(f"error: cannot write the output: {exc.strerror or exc}\n")
        sys.stderr.flush()
    except OSError:
        pass  # stderr is just as broken: the exit code says it
    os._exit(EXIT_USAGE)
