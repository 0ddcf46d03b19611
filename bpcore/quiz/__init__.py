"""The quiz: question banks, answers checked by the engine, progress, spaced repetition, widget and CLI.

In a notebook::

    import bpcore as bp
    bp.quiz.show(topic="chain_rule", level="basic", n=5)   # due reviews first, then new questions
    bp.quiz.ask("three-layer-chain")                      # one question by id
    bp.quiz.submit(sigmoid_backward)                      # code questions: hand over your function

In a terminal: ``bpcore quiz``, ``bpcore review``, ``bpcore mock``, ``bpcore stats``, ``bpcore validate``.

The modules, one concern each: ``parse`` (reading typed answers, never evaluating them), ``bank``
(TOML banks and their schema), ``generators`` (engine-computed problems), ``instance`` (a question
made concrete by a seed), ``diagnose`` (naming the usual mistakes), ``kinds`` (one checker per kind),
``functions`` and ``bughunts`` (what code and bug-hunt questions check), ``render`` (Markdown, LaTeX
and text), ``store`` (SQLite progress), ``schedule`` (FSRS), ``session`` (pick, grade, record),
``stats``, ``widget``, ``cli`` and ``validate``.

Importing this package is cheap: ipywidgets and the banks load on first use.
"""

from __future__ import annotations

_last_widget = None


def show(
    topic: str | None = None,
    level: str | None = None,
    n: int = 5,
    *,
    store=None,
    seed: int | None = None,
    directory=None,
):
    """A quiz widget with up to ``n`` questions of ``topic`` and ``level``: due reviews first, then new ones."""
    global _last_widget
    from bpcore.quiz.bank import load_banks
    from bpcore.quiz.session import pick
    from bpcore.quiz.store import Store
    from bpcore.quiz.widget import QuizWidget

    store = store if store is not None else Store()
    questions = pick(load_banks(directory).select(topic, level), store, n)
    _last_widget = QuizWidget(questions, store=store, seed=seed)
    return _last_widget


def ask(question_id: str, *, store=None, seed: int | None = None, directory=None):
    """A quiz widget with the one question ``question_id``."""
    global _last_widget
    from bpcore.quiz.bank import load_banks
    from bpcore.quiz.widget import QuizWidget

    _last_widget = QuizWidget([load_banks(directory).get(question_id)], store=store, seed=seed)
    return _last_widget


def submit(answer) -> None:
    """Answer the question on the most recently shown widget, e.g. ``bp.quiz.submit(my_function)``.

    The feedback shows in the widget and also here, under the cell that called ``submit`` (the widget
    may be far up the notebook).
    """
    if _last_widget is None:
        raise RuntimeError("no quiz is showing: call bp.quiz.ask(question_id) or bp.quiz.show() first")
    with _last_widget.errors.lock:  # not while a click on the widget is being handled on another thread
        _last_widget.submit(answer)
        shown = _last_widget.feedback.value
    _show_here(shown)


def _show_here(html_text: str) -> None:
    """Display ``html_text`` as the output of the running cell (nothing outside IPython)."""
    if not html_text:
        return
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:
        return
    if get_ipython() is not None:
        display(HTML(html_text))


def mock(n: int = 8, *, store=None, seed: int | None = None, directory=None):
    """A mock interview in the notebook: levels interleaved, topics mixed, feedback held until the end.

    Code questions and flashcards are left out (they need the notebook or self-rating). For a timed
    mock in a terminal: ``bpcore mock --minutes 30``.
    """
    global _last_widget
    from bpcore.quiz.bank import load_banks
    from bpcore.quiz.session import pick_mock
    from bpcore.quiz.widget import QuizWidget

    pool = [q for q in load_banks(directory).questions if q.kind not in ("code", "flashcard")]
    _last_widget = QuizWidget(pick_mock(pool, n, seed), store=store, seed=seed, mock=True)
    return _last_widget


def dashboard(*, store=None, directory=None):
    """Your progress at a glance, as a widget: mastery and accuracy by topic, reviews due, streak.

    Its Refresh button rereads the store (after answering a few questions, say).
    """
    from bpcore.quiz.bank import load_banks
    from bpcore.quiz.store import Store
    from bpcore.quiz.widget import Dashboard

    return Dashboard(load_banks(directory), store if store is not None else Store())


__all__ = ["ask", "dashboard", "mock", "show", "submit"]
