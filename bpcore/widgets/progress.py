"""A progress bar made of widgets, for training runs inside a notebook.

Widget views are not part of a notebook's compared text output, so a bar can come and go without
making the executed notebook differ from one run to the next.
"""

from __future__ import annotations

import ipywidgets as widgets


class WidgetBar:
    """``update(done, text)`` moves the bar; ``close()`` leaves it at its final state."""

    def __init__(self, total: int, description: str, show: bool = True):
        # the description in full: the default label width (about 80 px) cuts "causal transformer" to "causal tra..."
        self.bar = widgets.IntProgress(
            value=0, min=0, max=max(total, 1), description=description, style={"description_width": "initial"}
        )
        self.label = widgets.Label(value=f"0/{total}")
        self.total = total
        self.box = widgets.HBox([self.bar, self.label])
        if show:
            from IPython.display import display

            display(self.box)

    def update(self, done: int, text: str = "") -> None:
        self.bar.value = done
        self.label.value = f"{done}/{self.total} {text}".strip()

    def close(self) -> None:
        self.bar.bar_style = "success"
