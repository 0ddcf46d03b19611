"""The notebook progress bar, driven without a browser."""

import sys

import bpcore as bp
from bpcore import progress
from bpcore.widgets.progress import WidgetBar


def test_widget_bar_tracks_progress():
    bar = WidgetBar(10, "fit minibatch", show=False)
    bar.update(3, "loss 0.5")
    assert bar.bar.value == 3 and bar.bar.max == 10 and bar.label.value == "3/10 loss 0.5"
    bar.close()
    assert bar.bar.bar_style == "success"


def test_registered_bar_is_used_inside_a_kernel(monkeypatch):
    import bpcore.widgets  # noqa: F401  (registers the widget bar)

    made = []

    def factory(total, description):
        made.append((total, description))
        return WidgetBar(total, description, show=False)

    monkeypatch.setattr(progress, "_displays", [factory])
    monkeypatch.setitem(sys.modules, "ipykernel", sys.modules.get("ipykernel", object()))
    bar = progress.progress_bar(5, "fit batch", "auto")
    assert isinstance(bar, WidgetBar) and made == [(5, "fit batch")]
    assert not isinstance(progress.progress_bar(5, "x", False), WidgetBar)
    assert bp.train is not None
