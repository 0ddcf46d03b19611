"""The sanitize file nbval compares notebook outputs through (tests/nbval_sanitize.cfg).

A cell's code runs from a file Jupyter names TMPDIR/ipykernel_PID/HASH.py; the anomaly report of
notebook 05 prints that name. TMPDIR differs per machine (/tmp on Linux, /var/folders/.../T on
macOS, anything a learner sets), so the whole name must sanitize to the same text everywhere.
"""

import os
import re
import tempfile
from pathlib import Path

import pytest
from ipykernel.compiler import get_file_name
from nbval.plugin import get_sanitize_patterns

CONFIG = Path(__file__).parent / "nbval_sanitize.cfg"
PATTERNS = get_sanitize_patterns(CONFIG.read_text(encoding="utf-8"))


def sanitize(text: str) -> str:
    """What nbval does to both the committed and the fresh output before comparing them."""
    for regex, replace in PATTERNS:
        text = re.sub(regex, replace, text)
    return text


CELL_LINE = "  created at {}:4: loss = -(probs.log() * mask).sum()"
SANITIZED = "  created at CELL: loss = -(probs.log() * mask).sum()"  # the line number goes too


@pytest.mark.parametrize(
    "cell_file",
    [
        "/tmp/ipykernel_767/76645527.py",  # Linux
        "/var/folders/7x/k2_3yz9j1fr6m3h_3lz2wh0000gn/T/ipykernel_81234/76645527.py",  # macOS
        "/home/learner/my tmp/ünïcode/ipykernel_5/76645527.py",  # spaces and non-ASCII
        r"C:\Users\Learner\AppData\Local\Temp\ipykernel_42\76645527.py",  # Windows
    ],
)
def test_a_cell_file_name_sanitizes_to_the_same_text_wherever_tmpdir_is(cell_file):
    committed = sanitize(CELL_LINE.format("/tmp/ipykernel_767/76645527.py"))
    assert sanitize(CELL_LINE.format(cell_file)) == committed == SANITIZED


def test_the_name_ipykernel_gives_sanitizes_under_an_unusual_tmpdir(tmp_path, monkeypatch):
    unusual = tmp_path / "a folder" / "ünï 2"
    unusual.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(unusual))  # what TMPDIR sets, without a new process
    monkeypatch.delenv("IPYKERNEL_CELL_NAME", raising=False)
    cell_file = get_file_name("loss = probs.log().sum()\n")
    assert cell_file.startswith(str(unusual) + os.sep)
    assert sanitize(CELL_LINE.format(cell_file)) == SANITIZED


def test_only_the_cell_file_is_replaced():
    text = "a/b created at /tmp/ipykernel_1/22.py:3: y = x\nsee /home/me/bpcore/ops.py:110 for the op"
    assert sanitize(text) == "a/b created at CELL: y = x\nsee /home/me/bpcore/ops.py:110 for the op"



def _plain(widget) -> str:
    """The text/plain a notebook saves for a widget (ipywidgets cuts it at 110 characters)."""
    return widget._repr_mimebundle_()["text/plain"]


@pytest.mark.parametrize("description, total", [("overfitting study", 4), ("causal transformer", 150)])
def test_a_progress_bar_compares_equal_to_one_saved_before_its_label_was_widened(description, total):
    import ipywidgets as widgets

    from bpcore.widgets.progress import WidgetBar

    new = _plain(WidgetBar(total, description, show=False).box)
    bar = widgets.IntProgress(value=0, min=0, max=total, description=description)
    saved = _plain(widgets.HBox([bar, widgets.Label(f"0/{total}")]))
    assert new != saved  # the repr does show the style: only the sanitizer makes them equal
    assert sanitize(new) == sanitize(saved), (sanitize(new), sanitize(saved))
    assert f"description='{description}', max={total}" in sanitize(new)


def test_a_progress_bar_of_another_total_still_differs():
    from bpcore.widgets.progress import WidgetBar

    four, five = (_plain(WidgetBar(n, "fit batch", show=False).box) for n in (4, 5))
    assert sanitize(four) != sanitize(five)
