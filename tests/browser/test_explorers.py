"""The Image-based explorers in a real browser, used the way a learner uses them.

The explorers draw one reused matplotlib figure into an ``ipywidgets.Image`` and JupyterLab 4.6 delivers their
widget messages through kernel subshells (a callback may run on another thread than the one that built the
widget): a widget that works in a unit test can still fail in the lab. This test writes a throwaway notebook
with an ``AttentionExplorer``, a ``DepthExplorer`` (on 64 digits) and a ``BatchSizeExplorer`` (whose training
step bp.compile replays) into a throwaway folder it serves, runs it, then moves the d_k slider with the
keyboard and with the mouse, toggles the scale and the causal mask, changes the depth explorer's depth and
activation several times in a row, and the batch size up, three times back in quick succession, and down to 1.
After each change it checks the widget's own output: the ``<img>`` shows a new PNG and the summary shows the
numbers the engine gives, computed in this process with the same settings. It fails on any error in the
browser console, in JupyterLab's log console, or in an explorer's own error area. The notebook is served, from
a folder of its own, by the JupyterLab all browser tests share (conftest.py).

Needs Debian's ``chromium`` on PATH, like the other browser tests.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from labserver import new_page, open_notebook, shut_down_kernels
from playwright.sync_api import expect
from test_lab import cell_with_source, log_console_entries, normalise, output, run_all, screenshot

import bpcore as bp
from bpcore.labs.vanishing import deep_mlp, depth_profile
from bpcore.nn.functional import cross_entropy
from bpcore.widgets import BatchSizeExplorer
from bpcore.widgets.attention import D_K_OPTIONS, attention_step

REPO = Path(__file__).resolve().parents[2]
FOLDER = "explorers"  # in the shared server's folder
NOTEBOOK = "explorers.ipynb"
DIGITS = 64  # the depth explorer's batch: small, so each change answers fast
BAR = "causal transformer"  # the longest description a lab gives its progress bar is about this long
NARROW = {"width": 1000, "height": 800}  # a laptop window with JupyterLab's file browser open
CELLS = [
    "import bpcore as bp\nfrom bpcore.widgets import AttentionExplorer, BatchSizeExplorer, DepthExplorer",
    "attention = AttentionExplorer()\nattention",
    f"digits = bp.data.digits()\ndepth = DepthExplorer(digits.X_train[:{DIGITS}], digits.y_train[:{DIGITS}])\ndepth",
    "batch = BatchSizeExplorer(digits, epochs=1)\nbatch",
    f"from bpcore.widgets.progress import WidgetBar\nbar = WidgetBar(3, {BAR!r})\nbar.update(3)\nbar.close()",
]

BROWSER_ERRORS: list[str] = []


@pytest.fixture(scope="module")
def served(lab_server):
    """A folder of the shared server holding the explorers' notebook; its kernel is stopped when done."""
    folder = lab_server.root / FOLDER
    folder.mkdir()
    metadata = json.loads((REPO / "notebooks" / "00_start_here.ipynb").read_text(encoding="utf-8"))["metadata"]
    cells = [
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}
        for source in CELLS
    ]
    document = {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}
    (folder / NOTEBOOK).write_text(json.dumps(document, indent=1), encoding="utf-8")
    try:
        yield lab_server
    finally:
        shut_down_kernels(lab_server)


@pytest.fixture(scope="module")
def page(served, browser):
    with new_page(browser, BROWSER_ERRORS) as page:
        yield page


# -- the explorers' elements -----------------------------------------------------------------------


def slider(out, label: str):
    named = out.page.locator(".widget-label", has_text=re.compile(rf"^{re.escape(label)}$"))
    return out.locator(".widget-slider").filter(has=named)


def checkbox(out, label: str):
    return out.locator(".widget-checkbox", has_text=label).locator("input[type=checkbox]")


def summary(out, starts: str):
    return out.locator(".widget-html", has_text=starts)


def picture(out):
    return out.locator(".widget-image")


def no_error_shown(out) -> None:
    failed = out.locator(".widget-html", has_text="Something went wrong")
    shown = [normalise(failed.nth(i).inner_text()) for i in range(failed.count()) if failed.nth(i).is_visible()]
    assert not shown, f"the explorer's error area: {shown}"


def changed_picture(out, before: str, change: str) -> str:
    """Wait for the <img> to show other PNG bytes than ``before`` (ipywidgets gives each value a new blob URL)."""
    image = picture(out)
    try:
        expect(image).not_to_have_attribute("src", before)
    except AssertionError:
        raise AssertionError(
            f"after {change}, the explorer's <img> still shows the picture from before ({before})"
        ) from None
    src = image.get_attribute("src")
    assert src and src.startswith("blob:"), f"the explorer's <img> should show a PNG blob, its src is {src!r}"
    return src


# -- what the engine says for the same settings -------------------------------------------------------


def attention_numbers(d_k: int, scaled: bool, causal: bool) -> list[str]:
    """What AttentionExplorer's summary shows for these settings (seed 0), in its own formats."""
    r = attention_step(d_k, scaled, causal, seed=0)
    how = "scaled by 1/sqrt(d_k)" if scaled else "unscaled"
    return [
        f"d_k = {d_k}, {how}{', causal' if causal else ''}:",
        f"scores' std {r['score_std']:.2f}",
        f"mean largest weight per query {r['max_weight']:.2f}",
        f"||dL/dq_t|| = {r['grad_norm_q']:.3e}",
        f"||dL/dk_s|| = {r['grad_norm_k']:.3e}",
    ]


def depth_ratio(depth: int, activation: str) -> str:
    digits = bp.data.digits()
    X, y = digits.X_train[:DIGITS], digits.y_train[:DIGITS]
    profile = depth_profile(deep_mlp(depth, activation=activation, in_features=X.shape[1]), X, y, cross_entropy)
    return f"||dL/dh|| at block 1 / at block {depth}: {profile.ratio:.2e}"


def batch_summary(batch_size: int) -> str:
    """What BatchSizeExplorer(digits, epochs=1) says after training at ``batch_size`` (its step replayed by
    bp.compile there as here)."""
    explorer = BatchSizeExplorer(bp.data.digits(), epochs=1)
    explorer.batch_size.value = batch_size
    return explorer.summary.value


def expect_summary(out, starts: str, expected: list[str]) -> None:
    """The summary shows every one of ``expected`` (waits for the kernel's answer)."""
    shown = summary(out, starts)
    for text in expected:
        try:
            expect(shown).to_contain_text(text, use_inner_text=True)
        except AssertionError:
            failed = out.locator(".widget-html", has_text="Something went wrong").all_inner_texts()
            raise AssertionError(
                f"the summary should show {text!r}; it shows {normalise(shown.inner_text())!r}"
                + (f"; the explorer's error area: {normalise(' '.join(failed))!r}" if failed else "")
            ) from None


# -- the test ----------------------------------------------------------------------------------------


def test_explorers_answer_every_change_with_a_new_picture_and_the_engine_numbers(page, served):
    BROWSER_ERRORS.clear()
    open_notebook(page, served, f"{FOLDER}/{NOTEBOOK}")
    run_all(page)

    # -- the attention explorer: d_k by arrow keys, then by the mouse; scale and causal toggled
    out = output(cell_with_source(page, "attention = AttentionExplorer()"))
    d_k = slider(out, "d_k")
    readout = d_k.locator(".widget-readout")
    picture(out).wait_for()
    src = picture(out).get_attribute("src")
    settings = {"d_k": 64, "scaled": True, "causal": False}
    expect(readout).to_have_text("64")
    expect_summary(out, "d_k =", attention_numbers(**settings))
    box = picture(out).bounding_box()
    assert box and box["width"] >= 400, f"the attention figure is drawn {box} (expected at least 400 px wide)"

    d_k.locator(".noUi-handle").focus()
    for key, value in (("ArrowRight", 128), ("ArrowRight", 256), ("ArrowLeft", 128)):
        page.keyboard.press(key)
        expect(readout).to_have_text(str(value))
        settings["d_k"] = value
        expect_summary(out, "d_k =", attention_numbers(**settings))
        src = changed_picture(out, src, f"{key} on d_k")

    track = d_k.locator(".noUi-base").bounding_box()
    handle = d_k.locator(".noUi-handle").bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()  # a drag to a quarter of the track: d_k 4 of 1 ... 512
    page.mouse.move(track["x"] + track["width"] * 0.25, track["y"] + track["height"] / 2, steps=8)
    page.mouse.up()
    expect(readout).to_have_text("4")
    settings["d_k"] = 4
    expect_summary(out, "d_k =", attention_numbers(**settings))
    src = changed_picture(out, src, "a drag of d_k")
    page.mouse.click(track["x"] + track["width"] - 2, track["y"] + track["height"] / 2)  # a click at the far end
    expect(readout).to_have_text(str(D_K_OPTIONS[-1]))
    settings["d_k"] = D_K_OPTIONS[-1]
    expect_summary(out, "d_k =", attention_numbers(**settings))
    src = changed_picture(out, src, "a click at the end of d_k")

    for name, label in (("scaled", "scale by 1/sqrt(d_k)"), ("causal", "causal mask"), ("scaled", "scale by")):
        checkbox(out, label).click()
        settings[name] = not settings[name]
        expect_summary(out, "d_k =", attention_numbers(**settings))
        src = changed_picture(out, src, f"a click on {label!r}")
    no_error_shown(out)
    screenshot(page, "11_attention_explorer")

    # -- the depth explorer: depth several times in a row, then the activation
    out = output(cell_with_source(page, "depth = DepthExplorer("))
    depth = slider(out, "depth")
    readout = depth.locator(".widget-readout")
    src = picture(out).get_attribute("src")
    expect_summary(out, "||dL/dh||", [depth_ratio(20, "sigmoid")])
    depth.locator(".noUi-handle").focus()
    for value in (21, 22, 23):
        page.keyboard.press("ArrowRight")
        expect(readout).to_have_text(str(value))
        expect_summary(out, "||dL/dh||", [depth_ratio(value, "sigmoid")])
        src = changed_picture(out, src, f"depth {value}")
    for _ in range(3):  # three presses before any answer: the last one's numbers must be what stays
        page.keyboard.press("ArrowLeft")
    expect(readout).to_have_text("20")
    expect_summary(out, "||dL/dh||", [depth_ratio(20, "sigmoid")])
    src = changed_picture(out, src, "three quick presses back to depth 20")
    for activation in ("tanh", "relu"):
        out.locator(".widget-dropdown", has_text="activation").locator("select").select_option(activation)
        expect_summary(out, "||dL/dh||", [depth_ratio(20, activation)])
        src = changed_picture(out, src, f"activation {activation}")
    no_error_shown(out)
    screenshot(page, "12_depth_explorer")

    # -- the batch-size explorer (its training step replayed by bp.compile): larger, then three quick presses
    # back, then batch 1 (1,347 updates)
    out = output(cell_with_source(page, "batch = BatchSizeExplorer("))
    batch = slider(out, "batch size")
    readout = batch.locator(".widget-readout")
    src = picture(out).get_attribute("src")
    expect(readout).to_have_text("16")
    expect_summary(out, "batch 16,", [batch_summary(16)])
    batch.locator(".noUi-handle").focus()
    for value in (64, 256):
        page.keyboard.press("ArrowRight")
        expect(readout).to_have_text(str(value))
        expect_summary(out, f"batch {value},", [batch_summary(value)])
        src = changed_picture(out, src, f"batch size {value}")
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    expect(readout).to_have_text("4")
    expect_summary(out, "batch 4,", [batch_summary(4)])
    src = changed_picture(out, src, "three quick presses back to batch size 4")
    page.keyboard.press("ArrowLeft")
    expect(readout).to_have_text("1")
    expect_summary(out, "batch 1,", [batch_summary(1)])
    src = changed_picture(out, src, "batch size 1")
    no_error_shown(out)

    # a training run's progress bar says what it trains in full
    label = output(cell_with_source(page, "bar = WidgetBar(")).locator(".widget-hprogress .widget-label")
    expect(label).to_have_text(BAR)
    clipped = label.evaluate("e => e.scrollWidth > e.clientWidth")
    assert not clipped, f"the progress bar's description {BAR!r} is cut off: {label.bounding_box()}"

    # in a narrower window the explorers' pictures shrink to the output area (ipywidgets' Image CSS), undistorted
    page.set_viewport_size(NARROW)
    for source in ("attention = AttentionExplorer()", "depth = DepthExplorer(", "batch = BatchSizeExplorer("):
        out = output(cell_with_source(page, source))
        image, area = picture(out).bounding_box(), out.bounding_box()
        scrolls = out.evaluate("e => e.scrollWidth > e.clientWidth")
        assert image["width"] <= area["width"] and not scrolls, (
            f"in a {NARROW['width']} px window the picture of {source!r} overflows its output area: "
            f"picture {image}, output area {area}"
        )
        ratio = image["height"] / image["width"]
        natural = picture(out).evaluate("e => e.naturalHeight / e.naturalWidth")
        assert abs(ratio - natural) < 0.02, f"the picture of {source!r} is distorted: {ratio:.3f} shown, {natural:.3f}"

    stderr = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    assert not stderr.all_inner_texts(), f"a cell wrote to stderr: {stderr.all_inner_texts()}"
    entries = log_console_entries(page)
    problems = [e for e in entries if re.search(r"Traceback|Error|Exception|went wrong", e)]
    assert not problems, "JupyterLab's log console:\n" + "\n".join(problems)
    assert not BROWSER_ERRORS, "the browser console:\n" + "\n".join(BROWSER_ERRORS)
