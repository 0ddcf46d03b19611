"""One matplotlib figure, drawn again into one ``ipywidgets.Image`` at each explorer update.

A new pyplot figure per update costs 150-290 ms (creating the figure, its axes and ticks, a tight
bounding box, then the notebook's PNG); keeping one figure, changing its artists' data and
rendering it to PNG bytes costs a fraction of that. The figure is a plain
``matplotlib.figure.Figure`` on an Agg canvas, never registered with pyplot: it does not pile up
among pyplot's open figures, and it needs no Output widget to capture a ``plt.show()``. The bytes
go into the Image widget's ``value``, which ipywidgets sends to the browser as a binary buffer;
that works from any thread a callback runs on.
"""

from __future__ import annotations

import io

import ipywidgets as widgets

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class FigureImage:
    """``figure`` to draw on (its ``ax`` made at the start), ``widget`` to show, ``render()`` after each change.

    ``margins`` (left, bottom, right, top, as fractions of the figure) stay fixed: a layout
    computed at each update (tight or constrained) would cost more than the drawing.
    """

    def __init__(self, figsize=(7.0, 3.0), dpi: int = 100, margins=(0.11, 0.17, 0.98, 0.95)):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=figsize, dpi=dpi)
        FigureCanvasAgg(self.figure)
        left, bottom, right, top = margins
        self.figure.subplots_adjust(left=left, bottom=bottom, right=right, top=top)
        self.ax = self.figure.add_subplot()
        self.widget = widgets.Image(format="png", layout=widgets.Layout(width=f"{round(figsize[0] * dpi)}px"))
        self.renders = 0

    def log_y(self, ax=None) -> None:
        """A log y axis with minor ticks at 2 and 5 only: all eight per decade would double the drawing time.

        (matplotlib labels the minor ticks by itself when the axis spans less than a decade or two.)
        """
        from matplotlib.ticker import LogLocator

        ax = ax or self.ax
        ax.set_yscale("log")
        ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))

    def rescale(self) -> None:
        """Fit the axes to the artists' new data."""
        self.ax.relim()
        self.ax.autoscale_view()

    def render(self) -> bytes:
        """Draw the figure as it now is into the Image widget; the PNG bytes are returned too."""
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", pil_kwargs={"compress_level": 1})
        self.widget.value = png = buffer.getvalue()
        self.renders += 1
        return png
