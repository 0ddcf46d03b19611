"""Progress reporting for long runs, without a dependency.

In a terminal, a one-line bar on stderr appears once a run has lasted ``delay`` seconds (short runs
stay silent). Elsewhere nothing is printed, unless a display for another front end has been
registered with :func:`register_display` (the notebook layer registers a widget bar there, so the
engine itself never imports ipywidgets).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

_displays: list[Callable[[int, str], object]] = []


def register_display(factory: Callable[[int, str], object]) -> None:
    """``factory(total, description)`` returns an object with ``update(done, text)`` and ``close()``."""
    _displays.append(factory)


class TerminalBar:
    """``[#####.....] 12/50 text`` on stderr, redrawn in place, shown only after ``delay`` seconds."""

    def __init__(self, total: int, description: str, delay: float = 1.0, width: int = 30, stream=None):
        self.total, self.description, self.delay, self.width = total, description, delay, width
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.perf_counter()
        self.shown = False

    def update(self, done: int, text: str = "") -> None:
        if not self.shown and time.perf_counter() - self.started < self.delay:
            return
        self.shown = True
        filled = int(self.width * done / max(self.total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.description} [{bar}] {done}/{self.total} {text}   ")
        self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


class _Silent:
    def update(self, done: int, text: str = "") -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, description: str, enabled="auto"):
    """The right bar for where we are running.

    ``enabled``: False for none; True or "auto" for a registered display (notebooks) or, on a
    terminal, the stderr bar; or a factory ``(total, description) -> bar`` to use instead.
    """
    if enabled is False or enabled is None:
        return _Silent()
    if callable(enabled):
        return enabled(total, description)
    if _displays and "ipykernel" in sys.modules:
        return _displays[-1](total, description)
    if enabled is True or getattr(sys.stderr, "isatty", lambda: False)():
        return TerminalBar(total, description)
    return _Silent()
