"""The quiz in a notebook: ipywidgets, testable without a browser.

``bp.quiz.show(topic="chain_rule", n=5)`` or ``bp.quiz.ask("three-layer-chain")`` returns a
:class:`QuizWidget`; a notebook cell displays it. Everything a click does is a plain method
(``submit``, ``hint``, ``show_solution``, ``rate``, ``next_question``), so tests set ``.value`` on
the input widgets, call ``.click()`` on the buttons, and read ``feedback.value``.

Code questions take the learner's function itself: ``widget.submit(my_function)``, or type the
function's name in the box and press Submit (the name is looked up in the notebook's namespace;
the text is never run). Enter in a one-line answer box submits too.

Clicks go through :class:`bpcore.widgets.guard.ErrorArea`: if grading or saving fails, the widget
says what went wrong and whether the answer was saved, logs the traceback and stays usable.
"""

from __future__ import annotations

import html
import keyword
import time

import ipywidgets as widgets

from bpcore.quiz import render, schedule
from bpcore.quiz.bank import Question
from bpcore.quiz.instance import LETTERS
from bpcore.quiz.parse import ParseError
from bpcore.quiz.session import Session, score_text
from bpcore.quiz.store import Store
from bpcore.widgets.guard import ErrorArea

COLOURS = {
    "right": ("#2e7d32", "#e8f5e9"),
    "partial": ("#ef6c00", "#fff3e0"),
    "wrong": ("#c62828", "#ffebee"),
    "info": ("#1565c0", "#e3f2fd"),
}


# Choice lists: each option on its own row, its radio button or checkbox on the left of its first line,
# however long the label. ipywidgets gives every radio label a fixed one-line height and floats the
# button: a label that wraps spills into the next row, and its button ends up beside the next option.
CHOICES_CLASS = "bpcore-choices"
CHOICES_STYLE = f"""<style>
.{CHOICES_CLASS} .widget-radio-box label, .{CHOICES_CLASS} .jupyter-widget-radio-box label,
.{CHOICES_CLASS}.widget-checkbox label {{
  display: flex; align-items: flex-start; height: auto; line-height: 1.4em; white-space: normal; margin: 2px 0;
}}
.{CHOICES_CLASS} .widget-radio-box input, .{CHOICES_CLASS} .jupyter-widget-radio-box input,
.{CHOICES_CLASS}.widget-checkbox input {{
  order: -1; float: none; flex: none; align-self: flex-start; height: 1.4em; margin: 0 8px 0 1px;
}}
</style>"""


def choice_list(widget):
    """Lay a RadioButtons or Checkbox out for labels of any length (see CHOICES_STYLE)."""
    widget.layout.width, widget.layout.max_width = "auto", "100%"
    widget.layout.height = "auto"  # a checkbox's box is one line high otherwise
    widget.add_class(CHOICES_CLASS)
    return widget


def panel(tone: str, inner_html: str) -> str:
    """A coloured feedback box: green right, amber partial, red wrong, blue information."""
    border, background = COLOURS[tone]
    return (
        f'<div style="border-left: 4px solid {border}; background: {background}; padding: 6px 10px; '
        f'margin: 4px 0">{inner_html}</div>'
    )


def _ipython_namespace() -> dict:
    try:
        from IPython import get_ipython
    except ImportError:
        return {}
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


class QuizWidget:
    """A sequence of questions with Submit, Hint, Show solution and Next; every attempt is recorded."""

    def __init__(
        self,
        questions: list[Question],
        store: Store | None = None,
        seed: int | None = None,
        namespace: dict | None = None,
        clock=time.monotonic,
        mock: bool = False,
    ):
        if not questions:
            raise ValueError("no questions to show: loosen the topic or level, or check `bpcore stats`")
        self.questions, self.store = list(questions), store if store is not None else Store()
        # a mock interview holds all feedback until the end, as an interviewer would
        self.mock, self.results = mock, []
        mode = "mock" if mock else "notebook"
        self.session, self.namespace, self.clock = Session(self.store, mode, seed), namespace, clock
        self.header, self.prompt, self.feedback, self.score = (
            widgets.HTML(),
            widgets.HTMLMath(),
            widgets.HTMLMath(),
            widgets.HTML(),
        )
        self.notice = widgets.HTML(panel("info", html.escape(self.store.notice)) if self.store.notice else "")
        self.errors = ErrorArea(count_saved=lambda: len(self.session.graded))
        self.inputs = widgets.VBox()
        self.submit_button = widgets.Button(description="Submit", button_style="primary")
        self.hint_button = widgets.Button(description="Hint")
        self.solution_button = widgets.Button(description="Show solution")
        self.next_button = widgets.Button(description="Next")
        self.rating_buttons = [widgets.Button(description=word.capitalize()) for word in schedule.RATING_NAMES.values()]
        self.ratings = widgets.HBox(self.rating_buttons, layout=widgets.Layout(display="none"))
        guard = self.errors.guard
        # also what Enter in an answer box calls: see _enter_submits
        self._submit_clicked = guard(lambda *_: self.submit(), "grading your answer", True, "press Submit again")
        self.submit_button.on_click(self._submit_clicked)
        self.hint_button.on_click(guard(lambda _: self.hint(), "showing a hint", retry="press Hint again"))
        self.solution_button.on_click(
            guard(lambda _: self.show_solution(), "showing the solution", True, "press Show solution again")
        )
        self.next_button.on_click(
            guard(lambda _: self.next_question(), "moving to the next question", retry="press Next again")
        )
        for number, button in enumerate(self.rating_buttons, start=1):
            button.on_click(
                guard(lambda _, number=number: self.rate(number), "saving your rating", True, "rate it again")
            )
        buttons = widgets.HBox([self.submit_button, self.hint_button, self.solution_button, self.next_button])
        self.box = widgets.VBox(
            [
                self.notice,
                self.header,
                self.prompt,
                self.inputs,
                buttons,
                self.ratings,
                self.errors.widget,
                self.feedback,
                self.score,
            ]
        )
        if mock:
            self.hint_button.layout.display = self.solution_button.layout.display = "none"
        self.position = -1
        self.next_question()

    def _repr_mimebundle_(self, **kwargs):
        return self.box._repr_mimebundle_(**kwargs)

    # -- moving through the questions ------------------------------------------------------------
    def next_question(self) -> None:
        self.position += 1
        if self.position >= len(self.questions):
            total, count = self.session.score
            self.header.value = "<b>Done.</b>"
            self.prompt.value, self.inputs.children = "", ()
            self.feedback.value = panel(
                "info",
                f"Finished: {score_text(total)} / {count} answered of {len(self.questions)} questions "
                "(the first try at each question counts).",
            )
            if self.mock:
                self.feedback.value += self._mock_report()
            for button in (self.submit_button, self.hint_button, self.solution_button, self.next_button):
                button.disabled = True
            self._show_score()
            return
        q = self.questions[self.position]
        self.instance = self.session.instance(q)
        self.hints_used, self.attempted, self.revealed, self.unreadable = 0, False, False, 0
        self.started = self.clock()
        self.header.value = CHOICES_STYLE + (
            f"<b>Question {self.position + 1} of {len(self.questions)}</b> · {html.escape(q.topic)}"
            f" · {q.level} · <code>{q.id}</code>"
        )
        self.prompt.value = render.markdown_to_html(render.prompt(self.instance, "latex"))
        self.inputs.children = self._make_inputs(q)
        self.feedback.value = ""
        self.submit_button.disabled = False
        self.submit_button.description = "Reveal" if q.kind == "flashcard" else "Submit"
        self.hint_button.disabled = self.solution_button.disabled = False
        self.ratings.layout.display = "none"
        self._show_score()

    def _make_inputs(self, q: Question) -> tuple:
        """One input widget per answer part, kept in ``self.fields`` by name."""
        spec = q.spec
        if q.kind == "single":
            self.fields = {"choice": widgets.ToggleButtons(options=list(LETTERS[: len(spec["choices"])]), value=None)}
        elif q.kind == "multi":
            self.fields = {
                letter: choice_list(widgets.Checkbox(description=f"({letter})", value=False, indent=False))
                for letter in LETTERS[: len(spec["choices"])]
            }
        elif q.kind == "numeric":
            self.fields = {"value": self._enter_submits(widgets.Text(placeholder="a number: 0.25, -3/4 or 1e-3"))}
        elif q.kind == "matrix" and self.instance.steps:
            self.fields = {
                name: widgets.Textarea(placeholder="[[1, 2], [3, 4]] or numpy's printout")
                for name in self.instance.steps
            }
            rows = [
                widgets.HBox([widgets.HTMLMath(f"${label}$ ="), self.fields[name]])
                for name, label in self.instance.steps.items()
            ]
            return tuple(rows)
        elif q.kind == "matrix":
            self.fields = {"value": widgets.Textarea(placeholder="[[1, 2], [3, 4]] or paste numpy's printout")}
        elif q.kind == "order":
            self.fields = {
                "value": self._enter_submits(widgets.Text(placeholder="the letters in the right order, e.g. c a d b"))
            }
        elif q.kind == "code":
            self.fields = {
                "value": self._enter_submits(
                    widgets.Text(placeholder="the name of your function (or call .submit(fn))")
                )
            }
        elif q.kind == "bughunt":
            lines = self.instance.values["lines"]
            fixes = spec["fixes"]  # in the shuffled order of this instance, as the prompt lists them
            options = [(f"({LETTERS[p]}) {fixes[self.instance.option(p)]}", LETTERS[p]) for p in range(len(fixes))]
            self.fields = {
                "line": widgets.Dropdown(options=list(range(1, lines + 1)), value=None, description="line"),
                "fix": choice_list(widgets.RadioButtons(options=options, value=None, description="fix")),
            }
        else:  # flashcard: nothing to type, the Reveal button shows the answer
            self.fields = {}
        return tuple(self.fields.values())

    def _enter_submits(self, box: widgets.Text) -> widgets.Text:
        """Enter in ``box`` submits, as the Submit button does.

        The box keeps ``continuous_update`` on, so its value is current when Enter arrives, and
        listens for the "submit" event the browser sends on Enter (what the deprecated ``on_submit``
        listened to). Observing the value with ``continuous_update=False`` instead would also fire
        when the box loses focus, so clicking Submit would grade the answer twice.
        """

        def on_message(_box, content, _buffers):
            if content.get("event") == "submit" and not self.submit_button.disabled:
                self._submit_clicked()

        box.on_msg(on_message)
        return box

    def _read_answer(self):
        q, f = self.questions[self.position], self.fields
        if q.kind == "single":
            return f["choice"].value or ""
        if q.kind == "multi":
            return [letter for letter, box in f.items() if box.value]
        if q.kind == "matrix" and self.instance.steps:
            return {name: box.value for name, box in f.items()}
        if q.kind == "code":
            return self._lookup(f["value"].value.strip())
        if q.kind == "bughunt":
            return {"line": f["line"].value or "", "fix": f["fix"].value or ""}
        return f["value"].value

    def _lookup(self, name: str):
        """The notebook's function called ``name``: a dictionary lookup, never an evaluation."""
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ParseError(f"expected the name of a function defined in the notebook, got {name!r}")
        namespace = self.namespace if self.namespace is not None else _ipython_namespace()
        if name not in namespace:
            raise ParseError(f"no function called {name!r} in this notebook: run the cell that defines it first")
        return namespace[name]

    # -- the buttons -----------------------------------------------------------------------------
    def submit(self, answer=None) -> None:
        """Grade ``answer`` (default: what the inputs hold) and record it. For code: ``submit(my_function)``."""
        q = self.questions[self.position]
        if q.kind == "flashcard":
            self._reveal_card()
            return
        self.feedback.value = ""  # whatever happens next replaces the last message
        try:
            answer = self._read_answer() if answer is None else answer
            graded = self.session.grade(self.instance, answer, self.hints_used, self.clock() - self.started)
        except ParseError as error:
            self.unreadable += 1
            again = f" (try {self.unreadable})" if self.unreadable > 1 else ""
            self.feedback.value = panel("partial", f"Could not read that answer{again}: " + html.escape(str(error)))
            return
        self.attempted = True
        result = graded.result
        if self.mock:
            self.results.append((q, result))
            self.feedback.value = panel("info", "Answer recorded. The feedback comes at the end of the interview.")
            self.submit_button.disabled = True
            self._show_score()
            return
        tone = "right" if result.correct else "partial" if result.score > 0 else "wrong"
        parts = [f"<b>{'Right' if result.correct else 'Score'}: {result.score:.2f}</b>"]
        parts += [render.markdown_to_html(line) for line in result.feedback]
        if result.correct:
            parts.append(render.markdown_to_html("**Why:** " + q.explanation))
            self.submit_button.disabled = True
        parts.append(f"<small>Next review {schedule.describe_due(graded.due)}.</small>")
        self.feedback.value = panel(tone, "\n".join(parts))
        self._show_score()

    def _reveal_card(self) -> None:
        q = self.questions[self.position]
        self.feedback.value = panel(
            "info", render.markdown_to_html(q.spec["answer"]) + "<p>How well did you know it?</p>"
        )
        self.ratings.layout.display = "flex"
        self.submit_button.disabled = True

    def rate(self, rating: int) -> None:
        """Flashcards: record the learner's own rating (1 again, 2 hard, 3 good, 4 easy)."""
        graded = self.session.grade(self.instance, rating, self.hints_used, self.clock() - self.started)
        self.ratings.layout.display = "none"
        word = schedule.RATING_NAMES[rating]
        self.feedback.value += panel(
            "right" if rating >= 3 else "partial", f"Rated {word}. Next review {schedule.describe_due(graded.due)}."
        )
        self._show_score()

    def hint(self) -> None:
        hints = self.questions[self.position].hints
        if self.hints_used < len(hints):
            self.hints_used += 1
        shown = "".join(
            f"<p><b>Hint {i + 1} of {len(hints)}:</b> {render.inline_html(h)}</p>"
            for i, h in enumerate(hints[: self.hints_used])
        )
        self.feedback.value = panel("info", shown)
        self.hint_button.disabled = self.hints_used >= len(hints)

    def show_solution(self) -> None:
        """Show the answer and the explanation; before any attempt, this is recorded as a miss."""
        q = self.questions[self.position]
        if not self.attempted and not self.revealed and q.kind != "flashcard":
            self.session.reveal(self.instance, self.hints_used, self.clock() - self.started)
            self.revealed = True
            self.submit_button.disabled = True
        text = "**Solution:**\n\n" + render.solution(self.instance, "latex") + "\n\n**Why:** " + q.explanation
        text += f"\n\nLearn it in `{q.notebook}`."
        self.feedback.value = panel("info", render.markdown_to_html(text))
        self._show_score()

    def _mock_report(self) -> str:
        """Scores by topic, then each question with its verdict and the explanation."""
        by_topic: dict[str, list[float]] = {}
        for q, result in self.results:
            by_topic.setdefault(q.topic, []).append(result.score)
        rows = "".join(
            f"<tr><td>{html.escape(topic)}</td><td>{sum(scores):g} / {len(scores)}</td></tr>"
            for topic, scores in sorted(by_topic.items())
        )
        details = "".join(
            f"<p><b>{'right' if result.correct else 'wrong'}</b> <code>{q.id}</code>: "
            + render.markdown_to_html(q.explanation)
            + "</p>"
            for q, result in self.results
        )
        unanswered = len(self.questions) - len(self.results)
        note = f"<p>{unanswered} question(s) left unanswered.</p>" if unanswered else ""
        return panel("info", f"<b>By topic</b><table>{rows}</table>{note}{details}")

    def _show_score(self) -> None:
        total, count = self.session.score
        if self.mock and self.position < len(self.questions):  # no score until the report
            self.score.value = f"Answered {count} of {len(self.questions)} questions."
            return
        self.score.value = (
            f"Score this session: <b>{score_text(total)}</b> / {count} answered "
            "<small>(the first try at each question counts)</small>"
        )


class Dashboard:
    """Progress at a glance: mastery and accuracy by topic, reviews due, streak. Refresh rereads the store.

    ``value`` is the HTML on display (what tests read); a notebook cell displays the object.
    """

    def __init__(self, bank, store: Store):
        self.bank, self.store = bank, store
        self.errors = ErrorArea()
        self.text = widgets.HTML()
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(
            self.errors.guard(lambda _: self.refresh(), "reading your progress", retry="press Refresh again")
        )
        self.box = widgets.VBox([self.errors.widget, self.text, self.refresh_button])
        self.refresh()

    @property
    def value(self) -> str:
        return self.text.value

    def refresh(self) -> None:
        from bpcore.quiz.stats import html_summary, summarise

        table = html_summary(summarise(self.bank, self.store))
        notice = f"<p>{html.escape(self.store.notice)}</p>" if self.store.notice else ""
        self.text.value = notice + table

    def _repr_mimebundle_(self, **kwargs):
        return self.box._repr_mimebundle_(**kwargs)
