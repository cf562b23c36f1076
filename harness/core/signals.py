"""One signal helper for every long-running command: SIGINT and SIGTERM are caught, the first one
is recorded, listeners are told (a sweep passes it on to its runs), and inside `interruptible()`
it raises KeyboardInterrupt (a run's training loop ends on that and saves what it has).

Outside `interruptible()` a signal is only recorded, so a second Ctrl-C cannot cut a save short.
Inside `deferred()` (every file write: harness.core.files, checkpoints) the KeyboardInterrupt waits
until the write is done: an HDF5 write cut short leaves h5py objects that can crash the process
when they are freed (harness.core.files.write_with), and a checkpoint cut short is lost.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

CAUGHT = (signal.SIGINT, signal.SIGTERM)


class _Deferral(threading.local):
    """How many `deferred()` blocks this thread has open, and whether a signal waits for them.
    Per thread: Python runs signal handlers in the main thread, so only its blocks hold a signal
    back, and the KeyboardInterrupt is raised there, not in a thread writing beside it."""

    depth = 0
    pending = False


_DEFERRAL = _Deferral()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A block that a signal does not interrupt: a KeyboardInterrupt due inside it is raised when
    the outermost such block ends (not if it ends with an error of its own: that one goes first,
    and the signal stays recorded by its catcher)."""
    _DEFERRAL.depth += 1
    try:
        yield
    except BaseException:
        _DEFERRAL.depth -= 1
        _DEFERRAL.pending = _DEFERRAL.pending and _DEFERRAL.depth > 0
        raise
    _DEFERRAL.depth -= 1
    if _DEFERRAL.depth == 0 and _DEFERRAL.pending:
        _DEFERRAL.pending = False
        raise KeyboardInterrupt


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class SignalCatcher:
    """A context manager that owns SIGINT and SIGTERM while it is entered.

    `on_signal(callback)` adds a listener called with each signal number as it arrives (every
    signal, not only the first). Outside the main thread Python cannot install handlers: signals
    then stay with whoever owns them and the catcher records nothing.
    """

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._armed = False
        self._listeners: list[Callable[[int], None]] = []
        self._previous: dict[int, Any] = {}

    def on_signal(self, callback: Callable[[int], None]) -> None:
        self._listeners.append(callback)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal_number is None:
            self.signal_number = signum
        for callback in self._listeners:
            callback(signum)
        if self._armed:
            self._armed = False
            if _DEFERRAL.depth:
                _DEFERRAL.pending = True  # raised when the write ends (deferred)
                return
            raise KeyboardInterrupt

    def __enter__(self) -> SignalCatcher:
        for sig in CAUGHT:
            with contextlib.suppress(ValueError):  # not the main thread: signals stay with their owner
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)
        self._previous.clear()

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Signals interrupt the body; a KeyboardInterrupt that escapes it is recorded, not raised."""
        self._armed = self.signal_number is None
        try:
            yield
        except KeyboardInterrupt:
            if self.signal_number is None:
                self.signal_number = signal.SIGINT
        finally:
            self._armed = False

    @property
    def stopped(self) -> bool:
        return self.signal_number is not None

    @property
    def exit_code(self) -> int:
        """128 + the signal number, the shell's convention (130 for Ctrl-C, 143 for SIGTERM)."""
        return 128 + (self.signal_number or 0)
