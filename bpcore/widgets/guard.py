"""When a widget's callback fails: say so in the widget, log it, keep the widget working.

In a Jupyter kernel, an exception raised by a click or a slider callback never reaches the notebook:
ipywidgets prints it to JupyterLab's log console, which is out of sight, and the click seems to do
nothing. Every callback of bpcore's widgets (quiz, mock interview, dashboard, explorers) goes through
:meth:`ErrorArea.guard` instead, which

* shows what went wrong in the widget's own error area, whether the learner's answer was saved, and
  what to do next;
* logs the traceback on the ``bpcore.widgets`` logger (printed to stderr when logging is not
  configured; JupyterLab shows a callback's stderr in its log console);
* swallows the exception, so the widget stays usable for the next try;
* runs one callback of a widget at a time: Jupyter may deliver a widget's messages on different
  threads (kernel subshells), and a half-done callback must not meet the next one.

The message is cleared when a later callback succeeds. Calling a widget's methods directly (from a
cell or a test) is not guarded: errors there raise as usual.
"""

from __future__ import annotations

import functools
import html
import logging
import threading
from collections.abc import Callable

import ipywidgets as widgets

log = logging.getLogger("bpcore.widgets")

BORDER, BACKGROUND = "#c62828", "#ffebee"  # the quiz's "wrong" red
RESTART = (
    "If it happens again, restart the kernel (Kernel &gt; Restart Kernel) and run this cell again: "
    "saved progress is kept. The full traceback is in JupyterLab's log console (View &gt; Show Log Console)."
)


class ErrorArea:
    """A hidden-until-needed message box for one widget, and the wrapper its callbacks go through.

    ``count_saved``, if given, returns how many answers the widget has saved so far; a callback
    marked ``saves=True`` that fails then says whether the answer it was handling was saved.
    """

    def __init__(self, count_saved: Callable[[], int] | None = None):
        self.count_saved = count_saved
        self.widget = widgets.HTML(layout=widgets.Layout(display="none"))
        self.failures = 0  # in a row: a repeated failure reads as new, not as a stale message
        self.last_error: BaseException | None = None
        self.lock = threading.RLock()  # held by every guarded callback; code outside callbacks may take it too

    @property
    def value(self) -> str:
        return self.widget.value

    def guard(self, callback: Callable, doing: str, saves: bool = False, retry: str = "try again") -> Callable:
        """``callback`` wrapped for ``on_click``/``observe``/``on_msg``: any arguments are passed through.

        ``doing`` completes "Something went wrong while ..."; ``retry`` says how to try again.
        """

        @functools.wraps(callback)
        def guarded(*args, **kwargs):
            with self.lock:
                before = self._saved()
                try:
                    result = callback(*args, **kwargs)
                except Exception as error:
                    self.report(error, doing, self._saved_note(saves, before), retry)
                    return None
                self.clear()
                return result

        return guarded

    def _saved(self) -> int | None:
        try:
            return self.count_saved() if self.count_saved is not None else None
        except Exception:  # the count itself must not hide the real error
            return None

    def _saved_note(self, saves: bool, before: int | None) -> str:
        if not saves:
            return "Nothing was being saved, so no progress is lost."
        after = self._saved()
        if before is None or after is None:
            return "It is not known whether your answer was saved: <code>bpcore stats</code> in a terminal shows it."
        if after > before:
            return "Your answer was saved; only showing the result failed."
        return "<b>Your answer was not saved.</b>"

    def report(self, error: BaseException, doing: str, saved_note: str, retry: str) -> None:
        """Log ``error`` with its traceback and show it in the widget."""
        self.failures += 1
        self.last_error = error
        log.error("bpcore widget: something went wrong while %s", doing, exc_info=error)
        again = f" (failed {self.failures} times in a row)" if self.failures > 1 else ""
        what = f"{type(error).__name__}: {error}"
        self.widget.value = (
            f'<div style="border-left: 4px solid {BORDER}; background: {BACKGROUND}; padding: 6px 10px; '
            f'margin: 4px 0"><b>Something went wrong while {html.escape(doing)}{again}.</b><br>'
            f"<code>{html.escape(what)}</code><br>{saved_note}<br>"
            f"What to do: {html.escape(retry)}. {RESTART}</div>"
        )
        self.widget.layout.display = None

    def clear(self) -> None:
        self.failures, self.last_error = 0, None
        if self.widget.value:
            self.widget.value = ""
            self.widget.layout.display = "none"
