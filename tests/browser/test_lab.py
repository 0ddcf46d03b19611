"""The learner's path in a real browser: JupyterLab served on loopback, Chromium driven by Playwright.

Widgets render and call back only in a browser, so this test does what a learner does: run the
start-here notebook and the 3-layer notebook, answer quiz questions by clicking, step through the
stepper, move a slider of the chain-rule explorer, and checks what the page shows against the
engine and the progress store.

Needs Debian's ``chromium`` on PATH (``sudo apt-get install chromium``; Playwright's own browser
download is not used). Run it with ``make browser`` (part of ``make test``).

Nothing of the learner's or the repository's is touched: the JupyterLab all browser tests share
(conftest.py) serves a throwaway copy of notebooks/ (cleared of outputs, so every output asserted on
was produced by this run) with a throwaway ``BPCORE_HOME`` and throwaway Jupyter config, runtime,
data and settings folders.
Screenshots of each step go to ``test-artifacts/browser/``; with ``BPCORE_UPDATE_SCREENSHOTS=1``
the ones the README shows are also written, small, to ``docs/``.

The tests run in file order and share one server and one page: each one continues the last. The
last one is a learner who keeps going: many questions answered in one kernel (a show(), a mock() and
an ask()), every Submit looked up in the progress store, and JupyterLab's log console read for errors.
Every test fails on an error in the browser console.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import labserver
import numpy as np
import pytest
from labserver import RUN_TIMEOUT_MS, TIMEOUT_MS, new_page, notebook, shut_down_kernels, wait_kernel_idle
from playwright.sync_api import expect

import bpcore as bp
from bpcore.labs.chain_rule import scalar_chain
from bpcore.labs.three_layer import three_layer
from bpcore.quiz.bank import load_banks
from bpcore.quiz.instance import LETTERS
from bpcore.quiz.render import array_text
from bpcore.quiz.session import Session
from bpcore.quiz.store import Store

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
DOCS = REPO / "docs"
UPDATE_DOCS = os.environ.get("BPCORE_UPDATE_SCREENSHOTS") == "1"
FOLDER = "lab"  # in the shared server's folder
# The quiz questions answered through the widget (quizzes/three_layer.toml, both single choice).
RIGHT_QUESTION, WRONG_QUESTION = "three-layer-shapes", "three-layer-delta-hidden"
GREEN, RED = "rgb(46, 125, 50)", "rgb(198, 40, 40)"  # bpcore.quiz.widget.COLOURS right / wrong borders


# -- the server and the browser ------------------------------------------------------------------


@dataclass
class Lab:
    server: labserver.Server
    home: Path  # BPCORE_HOME of the server and its kernels
    notebooks: Path  # the throwaway copy the server serves
    folder: str  # its path under the served folder


def clear_outputs(notebook: Path) -> None:
    document = json.loads(notebook.read_text(encoding="utf-8"))
    for cell in document["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    document["metadata"].pop("widgets", None)
    notebook.write_text(json.dumps(document, indent=1), encoding="utf-8")


@pytest.fixture(scope="module")
def lab(lab_server):
    notebooks = lab_server.root / FOLDER
    shutil.copytree(REPO / "notebooks", notebooks, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for path in notebooks.glob("*.ipynb"):
        clear_outputs(path)
    try:
        yield Lab(lab_server, Path(lab_server.env["BPCORE_HOME"]), notebooks, FOLDER)
    finally:
        shut_down_kernels(lab_server)


@pytest.fixture(scope="module")
def page(lab, browser):
    with new_page(browser, BROWSER_ERRORS) as page:
        yield page


BROWSER_ERRORS: list[str] = []  # errors in the browser's console and uncaught page errors, as they come


@pytest.fixture(autouse=True)
def no_browser_errors():
    """Every test fails on an error in the browser console (JupyterLab logs failed requests and widget
    errors there) that appeared while it ran."""
    BROWSER_ERRORS.clear()
    yield
    assert not BROWSER_ERRORS, "the browser console:\n" + "\n".join(BROWSER_ERRORS)


# -- driving JupyterLab --------------------------------------------------------------------------


def screenshot(page, name: str, docs_name: str | None = None) -> None:
    """Save the page as an artifact; with BPCORE_UPDATE_SCREENSHOTS=1 also a small copy under docs/."""
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    if UPDATE_DOCS and docs_name:
        from PIL import Image

        DOCS.mkdir(exist_ok=True)
        with Image.open(path) as image:  # a 256-colour palette keeps UI screenshots at a fraction of the size
            small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
            small.save(DOCS / f"{docs_name}.png", optimize=True)


def cells(page):
    return notebook(page).locator(".jp-Cell")


def cell_with_source(page, text: str):
    """The one cell whose source contains ``text``."""
    found = cells(page).filter(has=page.locator(".jp-InputArea-editor", has_text=text))
    assert found.count() == 1, f"{found.count()} cells contain {text!r}"
    return found


def open_notebook(page, lab: Lab, name: str) -> None:
    """Open ``name`` of the served copy in a fresh workspace, file browser folded; wait until its kernel is up."""
    labserver.open_notebook(page, lab.server, f"{lab.folder}/{name}")


def menu(page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-item", has_text=re.compile(rf"^{re.escape(top)}$")).click()
    page.locator(".lm-Menu-item:visible", has_text=re.compile(rf"^{re.escape(item)}")).first.click()


# every code cell numbered, or an error on display (Run All stops there)
_FINISHED = """
(panel) => {
  if (panel.querySelector('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"] .ansi-red-fg, '
                          + '[data-mime-type="application/vnd.jupyter.error"]'))
    return true;
  const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
  return prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p.textContent.trim()));
}
"""


def run_all(page) -> None:
    """Run > Run All Cells, then wait for every cell to finish and the kernel to go idle; no cell may fail."""
    page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current").click()  # the Run menu acts on this tab
    menu(page, "Run", "Run All Cells")
    page.wait_for_function(_FINISHED, arg=notebook(page).element_handle(), timeout=RUN_TIMEOUT_MS, polling=250)
    wait_kernel_idle(page)
    errors = notebook(page).locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    tracebacks = [text for text in errors.all_inner_texts() if "Traceback" in text or "Error" in text]
    assert not tracebacks, "a cell failed:\n" + "\n".join(tracebacks)


def add_cell(page, code: str):
    """Append a code cell at the end (command mode ``b``), type ``code``, run it in place (Ctrl+Enter)."""
    count = cells(page).count()
    cells(page).nth(count - 1).locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    cell = cells(page).nth(count)
    cell.wait_for()
    page.keyboard.press("Enter")
    cell.locator(".cm-content").click()
    page.keyboard.insert_text(code)
    page.keyboard.press("Control+Enter")
    cell.locator(".jp-InputArea-prompt", has_text=re.compile(r"^\[\d+\]:$")).wait_for()
    return cell


def output(cell):
    return cell.locator(".jp-OutputArea-output")


def feedback(cell):
    """The quiz widget's feedback element: the HTMLMath that holds the coloured panel."""
    return output(cell).locator(".widget-htmlmath").filter(has=cell.page.locator('div[style*="border-left"]'))


def border_colour(element) -> str:
    return element.locator('div[style*="border-left"]').first.evaluate("e => getComputedStyle(e).borderLeftColor")


def scroll_to_top(cell) -> None:
    """Bring ``cell`` to the top of the notebook view (for the screenshot that follows)."""
    cell.evaluate("e => e.scrollIntoView({block: 'start'})")


def normalise(text: str) -> str:
    return " ".join(text.split())


def plain_text(markdown: str) -> str:
    """The longest stretch of a bank string outside $...$: what shows as text once MathJax has typeset it."""
    return max((part.strip() for part in re.split(r"\$[^$]*\$", markdown)), key=len)


def shown_instance(question_id: str, seed: int):
    """What ``bp.quiz.ask(question_id, seed=seed)`` shows: its choices are shuffled by the instance's seed."""
    return Session(None, "notebook", seed).instance(load_banks().get(question_id))


def answer_by_clicking(cell, letter: str) -> None:
    out = output(cell)
    out.locator(".widget-toggle-button", has_text=re.compile(rf"^{letter}$")).click()
    out.locator(".widget-toggle-button.mod-active", has_text=re.compile(rf"^{letter}$")).wait_for()
    out.locator(".widget-button", has_text=re.compile(r"^Submit$")).click()


# -- the tests -----------------------------------------------------------------------------------


def test_start_here_runs_and_shows_the_dashboard(page, lab):
    open_notebook(page, lab, "00_start_here.ipynb")
    screenshot(page, "01_start_here_opened")
    run_all(page)
    cell = cell_with_source(page, "bp.quiz.dashboard()")
    table = output(cell).locator(".widget-html table")  # the widget's own rendering, not the cell's source
    table.wait_for()
    text = output(cell).inner_text()
    assert re.search(r"topic\s+id\s+questions\s+seen\s+attempts\s+accuracy\s+mastery", text), text
    assert re.search(r"The 3-layer network\s+three_layer\s", text) and re.search(r"attempts: 0\b", text), text
    assert "Vanishing and exploding gradients, and residual connections" in text, text  # full titles
    scroll_to_top(cell)
    screenshot(page, "02_start_here_dashboard", docs_name="start-here")


def test_quiz_right_and_wrong_through_the_widget(page, lab):
    open_notebook(page, lab, "02_three_layer_network.ipynb")
    run_all(page)
    banks = load_banks()

    instance = shown_instance(RIGHT_QUESTION, 0)
    letter = instance.letter(instance.key)  # where the right choice is shown
    cell = add_cell(page, f'right = bp.quiz.ask("{RIGHT_QUESTION}", seed=0)\nright')
    output(cell).locator(".widget-button", has_text=re.compile(r"^Submit$")).wait_for()
    screenshot(page, "03_quiz_asked")
    answer_by_clicking(cell, letter)
    shown = feedback(cell)
    shown.wait_for()
    assert border_colour(shown) == GREEN
    text = normalise(shown.inner_text())
    assert "Right: 1.00" in text and f"({letter}) is right" in text, text
    assert output(cell).locator(".widget-button", has_text=re.compile(r"^Submit$")).is_disabled()
    screenshot(page, "04_quiz_right")

    wrong = banks.get(WRONG_QUESTION).spec
    instance = shown_instance(WRONG_QUESTION, 0)
    chosen = next(LETTERS[p] for p in range(len(wrong["choices"])) if instance.option(p) != instance.key)
    cell = add_cell(page, f'wrong = bp.quiz.ask("{WRONG_QUESTION}", seed=0)\nwrong')
    answer_by_clicking(cell, chosen)
    shown = feedback(cell)
    shown.wait_for()
    assert border_colour(shown) == RED
    text = normalise(shown.inner_text())
    assert "Score: 0.00" in text and f"({chosen}) is not right" in text, text
    diagnosis = plain_text(wrong["why"][instance.option(LETTERS.index(chosen))])  # why that choice is wrong
    assert normalise(diagnosis) in text, (diagnosis, text)
    scroll_to_top(cell)
    screenshot(page, "05_quiz_wrong", docs_name="quiz")


def _notebook_params():
    """The parameters of notebook 2's network (its third cell)."""
    rng = np.random.default_rng(0)
    n, m, k = 3, 4, 2
    params = {"W1": rng.normal(0, 0.8, (m, n)), "b1": np.zeros(m), "W2": rng.normal(0, 0.8, (k, m)), "b2": np.zeros(k)}
    return np.array([0.5, -1.2, 2.0]), np.array([1.0, 0.0]), params


def _shown(array) -> str:
    return normalise(np.array2string(np.asarray(array), precision=4, suppress_small=True, separator=", "))


def test_stepper_next_shows_the_next_equation_with_its_numbers(page, lab):
    x, y, params = _notebook_params()
    steps = three_layer(x, y, **params, f="sigmoid", g="sigmoid", loss="mse").steps
    cell = cell_with_source(page, "stepper = ThreeLayerStepper(")
    out = output(cell)
    title, values = out.locator(".widget-html").nth(0), out.locator(".widget-html").nth(1)
    assert "Step 1 of 10: Forward 1: linear" in title.inner_text()
    assert _shown(steps["z1"]) in normalise(values.inner_text())
    out.locator(".widget-button", has_text=re.compile(r"^\s*Next$")).click()
    expect(title).to_contain_text("Step 2 of 10")
    assert "Forward 2: hidden activation" in title.inner_text()
    shown = normalise(values.inner_text())
    assert _shown(steps["h"]) in shown and "z1 =" not in shown, shown
    scroll_to_top(cell)
    screenshot(page, "06_stepper_next", docs_name="stepper")


def _engine_gradients(x, w1, b1, w2, b2, y) -> dict[str, float]:
    """The explorer's network through the engine's backward pass."""
    p = {name: bp.tensor(v, requires_grad=True) for name, v in dict(w1=w1, b1=b1, w2=w2, b2=b2).items()}
    a1 = (p["w1"] * x + p["b1"]).sigmoid()
    a2 = (p["w2"] * a1 + p["b2"]).sigmoid()
    (0.5 * (a2 - y) ** 2).backward()
    return {name: float(t.grad) for name, t in p.items()}


def _table_row(out, name: str):
    row = out.locator("tr").filter(has=out.page.locator("td", has_text=re.compile(rf"^{name}$")))
    return [text.strip() for text in row.locator("td").all_inner_texts()]


def test_chain_rule_slider_moves_the_numbers_to_the_engine_values(page, lab):
    cell = add_cell(page, "from bpcore.widgets import ChainRuleExplorer\nexplorer = ChainRuleExplorer()\nexplorer")
    out = output(cell)
    out.locator("table").wait_for()
    start = dict(x=1.5, w1=0.8, b1=-0.3, w2=-1.2, b2=0.4, y=0.2)  # the explorer's starting sliders
    before = _table_row(out, "w1")
    assert before[2] == f"{scalar_chain(**start).grads['w1']:+.6f}", before

    slider = out.locator(".widget-slider").filter(has=page.locator(".widget-label", has_text=re.compile("^w1$")))
    readout, row = (
        slider.locator(".widget-readout"),
        out.locator("tr").filter(has=page.locator("td", has_text=re.compile("^w1$"))),
    )
    assert readout.inner_text().strip() == "0.80"
    slider.locator(".noUi-handle").focus()
    for shown_value in ("0.85", "0.90"):  # one step of 0.05 per arrow key, as a learner would move it
        page.keyboard.press("ArrowRight")
        expect(readout).to_have_text(shown_value)
        moved = {**start, "w1": float(shown_value)}
        expect(row).to_contain_text(f"{_engine_gradients(**moved)['w1']:+.6f}")  # the kernel answered
    by_hand, engine = scalar_chain(**moved).grads, _engine_gradients(**moved)
    for name in ("w1", "b1", "w2", "b2"):
        cells_shown = _table_row(out, name)
        assert cells_shown[2] == f"{by_hand[name]:+.6f}", (name, cells_shown)
        assert cells_shown[3] == f"{engine[name]:+.6f}", (name, cells_shown)
    assert _table_row(out, "w1")[3] != before[3]
    forward = normalise(out.locator(".widget-html").first.inner_text())
    assert f"z1 = {scalar_chain(**moved).values['z1']:.4f}" in forward, forward
    scroll_to_top(cell)
    screenshot(page, "07_chain_rule_slider", docs_name="explorer")


def test_the_clicked_answers_reached_the_progress_store(lab):
    with Store(lab.home / "progress.db") as store:
        attempts = store.attempts(mode="notebook")
        assert store.count() >= 2
    by_question = {a["question_id"]: a for a in attempts}
    assert by_question[RIGHT_QUESTION]["score"] == 1.0
    assert by_question[WRONG_QUESTION]["score"] == 0.0
    wrong = by_question[WRONG_QUESTION]["answer"]  # the letter clicked, and the option of the file it stood for
    assert wrong["option"] != LETTERS.index(load_banks().get(WRONG_QUESTION).spec["answer"])
    assert shown_instance(WRONG_QUESTION, 0).option(LETTERS.index(wrong["letter"])) == wrong["option"]


# -- a learner who keeps going: many Submits in one kernel ------------------------------------------
#
# JupyterLab 4.6 sends widget messages through a kernel subshell, and ipykernel 7 runs a widget's
# later messages on whichever thread last updated it: once a right answer disables Submit, the next
# clicks run on another thread than the one that opened the progress store. Each test above answers
# once in a fresh cell; this one answers 4 questions of a show(), a whole mock() and an ask() in one
# kernel, then checks that every Submit is in the store and that nothing went to the log console.

SESSION_NOTEBOOK = "quiz_session.ipynb"
SHOW_TOPIC, SHOW_SEED = "activations", 3  # single, numeric, matrix, single (quizzes/activations.toml)
MOCK_SEED, MOCK_N = 1, 3  # single, bughunt, single
ASKED = "chain-rule-composite"


@dataclass
class Submitted:
    question_id: str
    mode: str
    error: str | None  # what the widget's error area said, if the Submit failed


def new_notebook(lab: Lab, name: str, source: str) -> None:
    """A notebook with one code cell, with the kernel of the course notebooks."""
    metadata = json.loads((lab.notebooks / "00_start_here.ipynb").read_text(encoding="utf-8"))["metadata"]
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}
    document = {"cells": [cell], "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}
    (lab.notebooks / name).write_text(json.dumps(document, indent=1), encoding="utf-8")


def widget_instances(questions, seed: int):
    """The instances a widget with ``seed`` makes, in order (the seeds come from the session's generator)."""
    from bpcore.quiz.session import Session

    session = Session(None, "notebook", seed)
    return [session.instance(q) for q in questions]


def error_area(cell):
    """The widget's error area (bpcore.widgets.guard.ErrorArea): shown only when a callback failed."""
    return output(cell).locator(".widget-html").filter(has_text="Something went wrong")


# the widget answered: its feedback panel holds ``expected``, or its error area shows a new failure
_RESPONDED = """
([out, expected, before]) => {
  const failed = [...out.querySelectorAll('.widget-html')].find(e => e.textContent.includes('Something went wrong'));
  if (failed && failed.offsetParent !== null && failed.textContent !== before) return 'error';
  const panels = [...out.querySelectorAll('.widget-htmlmath')].filter(e => e.querySelector('div[style*="border"]'));
  return panels.some(e => e.textContent.includes(expected)) ? 'ok' : false;
}
"""


def wait_for_response(cell, expected: str, before: str) -> str | None:
    """Wait for the kernel's answer to a Submit; the error shown if it failed, else None."""
    result = cell.page.wait_for_function(
        _RESPONDED, arg=[output(cell).element_handle(), expected, before], timeout=TIMEOUT_MS, polling=100
    )
    if result.json_value() == "error":
        return normalise(error_area(cell).first.inner_text())
    return None


def shown_question(cell, number: int, total: int) -> str:
    """Wait for 'Question number of total' and return the id in the widget's header."""
    header = output(cell).locator(".widget-html", has_text=f"Question {number} of {total}")
    header.wait_for()
    expect(feedback(cell)).to_have_count(0)  # the last question's feedback is gone
    return header.locator("code").inner_text().strip()


def type_answer(cell, instance, how: str = "click") -> str:
    """Enter the answer key the way a learner would; ``how``: "click" on Submit or "enter" in the box.
    Returns the text the feedback panel will show for it."""
    out, q, key = output(cell), instance.question, instance.key
    if q.kind == "single":
        letter = instance.letter(key)  # where the key is shown: choices are shuffled per attempt
        out.locator(".widget-toggle-button", has_text=re.compile(rf"^{letter}$")).click()
        out.locator(".widget-toggle-button.mod-active", has_text=re.compile(rf"^{letter}$")).wait_for()
    elif q.kind == "numeric":
        out.locator(".widget-text input").fill(array_text(key))
    elif q.kind == "matrix":
        out.locator(".widget-textarea textarea").fill(array_text(key))
    elif q.kind == "bughunt":
        line, fix = key
        out.locator(".widget-dropdown select").select_option(str(line))
        radios = out.locator(".widget-radio-box input[type=radio]")
        shown = LETTERS.index(instance.letter(fix))  # the fixes are shuffled too
        radios.nth(shown).click()  # the circle itself: it must sit on its own option's row
        expect(radios.nth(shown)).to_be_checked()
    else:
        raise AssertionError(f"no way to type a {q.kind} answer in this test")
    if how == "enter":
        out.locator(".widget-text input").press("Enter")
    else:
        out.locator(".widget-button", has_text=re.compile(r"^Submit$")).click()
    return "Right: 1.00"


def submit(cell, instance, mode: str, log: list[Submitted], how: str = "click", wrong: str | None = None):
    """Answer (wrongly with letter ``wrong``, else with the key) and wait for the widget to respond."""
    before = error_area(cell).first.evaluate("e => e.textContent") if error_area(cell).count() else ""
    if wrong is not None:
        answer_by_clicking(cell, wrong)
        expected = "Score: 0.00"
    else:
        expected = type_answer(cell, instance, how)
    if mode == "mock":
        expected = "Answer recorded"
    log.append(Submitted(instance.question.id, mode, wait_for_response(cell, expected, before)))


def click_next(cell) -> None:
    output(cell).locator(".widget-button", has_text=re.compile(r"^Next$")).click()


def log_console_entries(page) -> list[str]:
    """Open JupyterLab's log console (View > Show Log Console) and return what it holds."""
    menu(page, "View", "Show Log Console")
    panel = page.locator(".jp-LogConsolePanel")
    panel.wait_for()
    page.wait_for_timeout(500)  # entries arrive with the kernel's messages; give the last ones a moment
    return [normalise(text) for text in panel.locator(".jp-OutputArea-output").all_inner_texts()]


def test_a_learner_who_keeps_going_has_every_submit_saved(page, lab):
    from bpcore.quiz.session import pick_mock

    with Store(lab.home / "progress.db") as store:
        before = store.count()
    banks, submitted = load_banks(), []

    new_notebook(lab, SESSION_NOTEBOOK, "import bpcore as bp")
    open_notebook(page, lab, SESSION_NOTEBOOK)
    run_all(page)

    # a show() of 4: wrong then right on the first, Enter on the numeric one, clicks for the rest
    cell = add_cell(page, f'quiz = bp.quiz.show(topic="{SHOW_TOPIC}", n=4, seed={SHOW_SEED})\nquiz')
    with Store(lab.home / "progress.db") as store:
        from bpcore.quiz.session import pick

        questions = pick(banks.select(SHOW_TOPIC), store, 4)
    instances = widget_instances(questions, SHOW_SEED)
    assert [q.kind for q in questions] == ["single", "numeric", "matrix", "single"], [q.id for q in questions]
    for number, instance in enumerate(instances, start=1):
        assert shown_question(cell, number, 4) == instance.question.id
        if number == 1:
            wrong = next(letter for letter in "abcd" if letter != instance.letter(instance.key))
            submit(cell, instance, "notebook", submitted, wrong=wrong)
        how = "enter" if instance.question.kind == "numeric" else "click"
        submit(cell, instance, "notebook", submitted, how=how)
        click_next(cell)
    expect(feedback(cell)).to_contain_text("Finished:")
    finished = normalise(feedback(cell).inner_text())

    # a mock interview: no feedback and no score until the report
    cell = add_cell(page, f"interview = bp.quiz.mock(n={MOCK_N}, seed={MOCK_SEED})\ninterview")
    pool = [q for q in banks.questions if q.kind not in ("code", "flashcard")]
    mock_instances = widget_instances(pick_mock(pool, MOCK_N, MOCK_SEED), MOCK_SEED)
    score_line = output(cell).locator(".widget-html", has_text=re.compile("Answered|Score"))
    for number, instance in enumerate(mock_instances, start=1):
        assert shown_question(cell, number, MOCK_N) == instance.question.id
        if instance.question.kind == "bughunt":
            scroll_to_top(cell)
            screenshot(page, "08_mock_bughunt_choices")
        submit(cell, instance, "mock", submitted)
        assert "Score" not in score_line.inner_text(), score_line.inner_text()
        click_next(cell)
    expect(feedback(cell)).to_contain_text("By topic")

    # one question asked by id: wrong, then right
    cell = add_cell(page, f'one = bp.quiz.ask("{ASKED}", seed=0)\none')
    (instance,) = widget_instances([banks.get(ASKED)], 0)
    submit(cell, instance, "notebook", submitted, wrong=next(c for c in "ab" if c != instance.letter(instance.key)))
    submit(cell, instance, "notebook", submitted)
    scroll_to_top(cell)
    screenshot(page, "09_one_kernel_session")

    failed = [s for s in submitted if s.error]
    with Store(lab.home / "progress.db") as store:
        saved = [(a["question_id"], a["mode"]) for a in store.attempts()[before:]]
    expected = [(s.question_id, s.mode) for s in submitted]
    report = f"{len(saved)} of {len(submitted)} Submits saved; the widget showed {len(failed)} failures: {failed}"
    assert saved == expected, report
    assert not failed, report
    assert "Finished: 3 / 4 answered of 4 questions" in finished, finished  # the first try at each counts

    stderr = notebook(page).locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    assert not stderr.all_inner_texts(), stderr.all_inner_texts()
    entries = log_console_entries(page)
    screenshot(page, "10_log_console")
    problems = [e for e in entries if re.search(r"Traceback|Error|Exception|went wrong", e)]
    assert not problems, "JupyterLab's log console:\n" + "\n".join(problems)
    # and the browser console: checked after every test (no_browser_errors)
