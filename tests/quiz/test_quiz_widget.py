"""The notebook widget, driven the way a browser would: set .value, .click(), read the traits."""

import concurrent.futures
import logging
import re
import threading

import numpy as np
import pytest

import bpcore.quiz as quiz
from bpcore.quiz.render import array_text
from bpcore.quiz.store import StoreError
from bpcore.quiz.widget import QuizWidget

GREEN, RED, AMBER = "#2e7d32", "#c62828", "#ef6c00"


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def widget_for(bank, store, *ids, **kwargs):
    return QuizWidget([bank.get(i) for i in ids], store=store, seed=7, **kwargs)


def right_letter(w) -> str:
    """The letter the widget shows for the key (choices are shuffled per attempt)."""
    return w.instance.letter(w.instance.key)


def wrong_letters(w) -> list[str]:
    return [c for c in "abcdefgh"[: len(w.instance.question.spec["choices"])] if c != right_letter(w)]


def wrong_letter(w) -> str:
    return wrong_letters(w)[0]


def test_a_right_answer_turns_green_and_is_recorded(bank, store):
    clock = FakeClock()
    w = widget_for(bank, store, "chain-rule-composite", clock=clock)
    letter = w.instance.letter(w.instance.key)  # where the shuffle put the right choice
    right = w.questions[0].spec["choices"][w.instance.key]
    assert "Which expression" in w.prompt.value
    shown = [line for line in w.prompt.value.split("<li>") if line.startswith(f"({letter})")]
    assert len(shown) == 1 and shown[0].startswith(f"({letter}) {right[:10]}")  # the prompt lists it there
    w.fields["choice"].value = letter
    clock.now = 30.0
    w.submit_button.click()
    assert GREEN in w.feedback.value and "Right: 1.00" in w.feedback.value
    assert "Why:" in w.feedback.value and "Next review" in w.feedback.value
    assert w.submit_button.disabled  # answered: move on
    assert "<b>1</b> / 1" in w.score.value
    (attempt,) = store.attempts()
    assert (attempt["question_id"], attempt["answer"], attempt["mode"], attempt["seconds"]) == (
        "chain-rule-composite",
        {"letter": letter, "option": 1},  # what was seen, and which option of the file that is
        "notebook",
        30.0,
    )


def test_a_wrong_matrix_answer_shows_the_diagnosis(bank, store):
    w = widget_for(bank, store, "three-layer-dw2")
    w.fields["value"].value = array_text(w.instance.key.T)
    w.submit_button.click()
    assert RED in w.feedback.value and "<b>transposed</b>" in w.feedback.value
    assert "Why:" not in w.feedback.value  # the explanation would give the answer away: try again first
    assert not w.submit_button.disabled
    w.fields["value"].value = array_text(w.instance.key)
    w.submit_button.click()
    assert GREEN in w.feedback.value
    assert [a["score"] for a in store.attempts()] == [0.0, 1.0]


def test_an_unreadable_answer_is_explained_and_not_recorded(bank, store):
    w = widget_for(bank, store, "chain-rule-central-difference")
    w.fields["value"].value = "__import__('os')"
    w.submit_button.click()
    assert "Could not read that answer" in w.feedback.value and "expected a number" in w.feedback.value
    assert store.count() == 0


def test_hints_are_tiered_and_counted(bank, store):
    w = widget_for(bank, store, "three-layer-chain")
    w.hint_button.click()
    assert "Hint 1 of 3" in w.feedback.value and "Hint 2" not in w.feedback.value
    w.hint_button.click()
    w.hint_button.click()
    assert "Hint 3 of 3" in w.feedback.value and w.hint_button.disabled
    for name, box in w.fields.items():
        box.value = array_text(w.instance.key[name])
    w.submit_button.click()
    assert GREEN in w.feedback.value
    (attempt,) = store.attempts()
    assert attempt["hints_used"] == 3 and attempt["rating"] == 2  # right with hints: Hard


def test_the_chained_derivation_names_the_first_wrong_step(bank, store):
    w = widget_for(bank, store, "three-layer-chain")
    for name, box in w.fields.items():
        box.value = array_text(w.instance.key[name])
    w.fields["dL/dW2"].value = array_text(-w.instance.key["dL/dW2"])
    w.submit_button.click()
    assert AMBER in w.feedback.value and "Score: 0.75" in w.feedback.value
    assert "the first wrong step is <b>dL/dW2</b>" in w.feedback.value and "wrong sign" in w.feedback.value


def test_showing_the_solution_first_counts_as_a_miss(bank, store):
    w = widget_for(bank, store, "training-momentum")
    w.solution_button.click()
    assert "Solution:" in w.feedback.value and "\\begin{bmatrix}" in w.feedback.value
    assert bank.get("training-momentum").notebook.split("#")[0] in w.feedback.value  # points where it is taught
    (attempt,) = store.attempts()
    assert attempt["score"] == 0 and attempt["answer"] == {"revealed": True} and attempt["rating"] == 1
    w.solution_button.click()  # looking again records nothing more
    assert store.count() == 1 and w.submit_button.disabled


def test_every_input_kind(bank, store):
    w = widget_for(
        bank, store, "chain-rule-paths-add", "chain-rule-backward-order", "three-layer-bughunt-tanh", "chain-rule-vjp"
    )
    for index in w.instance.key:  # a, c and d in the file, wherever they are shown
        w.fields[w.instance.letter(index)].value = True
    w.submit_button.click()
    assert GREEN in w.feedback.value
    w.next_button.click()
    letters = " ".join("abcde"[w.instance.display.index(i)] for i in range(5))
    w.fields["value"].value = letters
    w.submit_button.click()
    assert GREEN in w.feedback.value
    w.next_button.click()
    wrong_fix = next(p for p in range(len(w.fields["fix"].options)) if w.instance.option(p) != w.instance.key[1])
    w.fields["line"].value, w.fields["fix"].value = 9, "abcd"[wrong_fix]
    w.submit_button.click()
    assert "Score: 0.50" in w.feedback.value
    w.next_button.click()
    assert w.submit_button.description == "Reveal"
    w.submit_button.click()
    assert "vector-Jacobian product" in w.feedback.value and w.ratings.layout.display == "flex"
    w.rating_buttons[2].click()  # Good
    assert "Rated good" in w.feedback.value
    w.next_button.click()
    assert "Finished: 3.5 / 4" in w.feedback.value and w.next_button.disabled
    assert [a["rating"] for a in store.attempts()][-1] == 3


def sigmoid_backward(z, upstream):
    s = 1 / (1 + np.exp(-z))
    return upstream * s * (1 - s)


def test_code_questions_take_a_function_by_object_or_by_name(bank, store):
    w = widget_for(bank, store, "chain-rule-code-sigmoid-backward", namespace={"sigmoid_backward": sigmoid_backward})
    w.submit(lambda z, upstream: upstream)
    assert RED in w.feedback.value and "gradient check" in w.feedback.value
    w.fields["value"].value = "sigmoid_backward"
    w.submit_button.click()
    assert GREEN in w.feedback.value
    assert store.attempts()[-1]["answer"]["function"] == "sigmoid_backward"
    assert "upstream * s * (1 - s)" in store.attempts()[-1]["answer"]["source"]


@pytest.mark.parametrize("typed", ["__import__('os').system('touch pwned')", "missing_function", "lambda"])
def test_a_typed_name_is_only_looked_up(bank, store, typed, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = widget_for(bank, store, "chain-rule-code-sigmoid-backward", namespace={})
    w.fields["value"].value = typed
    w.submit_button.click()
    assert "Could not read that answer" in w.feedback.value and store.count() == 0
    assert not (tmp_path / "pwned").exists()


def test_show_ask_and_submit_from_the_package(home):
    widget = quiz.show(topic="three_layer", level="basic", n=1, seed=1)
    assert widget.questions[0].id == "three-layer-shapes"
    shown = quiz.ask("chain-rule-code-sigmoid-backward", seed=1)
    quiz.submit(sigmoid_backward)
    assert GREEN in shown.feedback.value
    assert widget.store.path == home / "progress.db"
    assert "application/vnd.jupyter.widget-view+json" in shown._repr_mimebundle_()


def test_a_damaged_store_is_announced_in_the_widget(home, bank):
    home.mkdir(parents=True)
    (home / "progress.db").write_bytes(b"not sqlite" * 100)
    w = quiz.show(topic="chain_rule", n=1)
    assert "could not be read" in w.notice.value and "progress.db.damaged-" in w.notice.value


def test_dashboard_reads_the_store(bank, store):
    import bpcore.quiz as quiz

    before = quiz.dashboard(store=store).value
    assert "attempts: 0" in before and bank.titles["chain_rule"][:20] in before
    w = widget_for(bank, store, "training-momentum")
    w.solution_button.click()  # recorded as a miss
    after = quiz.dashboard(store=store).value
    assert "attempts: 1" in after and "due now" in after


def test_a_mock_interview_holds_feedback_until_the_end(bank, store):
    w = widget_for(bank, store, "chain-rule-composite", "three-layer-delta-hidden", mock=True)
    assert w.hint_button.layout.display == "none" and w.solution_button.layout.display == "none"
    w.fields["choice"].value = w.instance.letter(w.instance.key)  # right
    w.submit_button.click()
    assert "feedback comes at the end" in w.feedback.value and GREEN not in w.feedback.value
    w.next_button.click()
    choices = len(w.questions[1].spec["choices"])
    w.fields["choice"].value = w.instance.letter((w.instance.key + 1) % choices)  # wrong
    w.submit_button.click()
    assert RED not in w.feedback.value
    w.next_button.click()
    report = w.feedback.value
    assert "By topic" in report and "1 / 1" in report and "0 / 1" in report
    assert "<b>right</b> <code>chain-rule-composite</code>" in report
    assert "<b>wrong</b> <code>three-layer-delta-hidden</code>" in report
    assert [a["mode"] for a in store.attempts()] == ["mock", "mock"]


def test_mock_picks_interleaved_levels_without_code_or_flashcards(bank, store):
    w = quiz.mock(n=6, store=store, seed=1)
    assert len(w.questions) == 6 and w.mock
    assert all(q.kind not in ("code", "flashcard") for q in w.questions)
    assert {q.level for q in w.questions[:3]} == {"basic", "intermediate", "advanced"}


# -- callbacks from other threads, failures shown in the widget, Enter, scores ---------------------


def on_thread(function, *args):
    """Run ``function`` on a new thread, as a Jupyter kernel subshell runs a widget's callbacks."""
    thread = threading.Thread(target=function, args=args)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive()


def press_enter(box):
    """What the browser sends when Enter is pressed in a Text widget."""
    box._handle_msg({"content": {"data": {"method": "custom", "content": {"event": "submit"}}}, "buffers": []})


def test_clicks_handled_on_other_threads_are_all_recorded(bank, store):
    ids = ["chain-rule-composite", "chain-rule-central-difference", "three-layer-dw2", "training-momentum"]
    w = widget_for(bank, store, *ids)  # built on this thread, like a widget made by a notebook cell
    w.fields["choice"].value = wrong_letter(w)  # wrong, then right: several Submits in a row, each on a new thread
    on_thread(w.submit_button.click)
    w.fields["choice"].value = right_letter(w)
    on_thread(w.submit_button.click)
    assert w.errors.value == "", w.errors.value  # on failure: what the learner would have seen
    assert GREEN in w.feedback.value and w.submit_button.disabled
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as a, concurrent.futures.ThreadPoolExecutor(1) as b:
        a.submit(w.next_button.click).result()  # two long-lived threads taking turns
        w.fields["value"].value = "1.5"
        b.submit(w.submit_button.click).result()
        a.submit(press_enter, w.fields["value"]).result()
        b.submit(w.next_button.click).result()
        w.fields["value"].value = array_text(w.instance.key)
        a.submit(w.submit_button.click).result()
        b.submit(w.next_button.click).result()
        a.submit(w.solution_button.click).result()
    assert w.errors.value == "", w.errors.value
    attempts = store.attempts()
    assert [a["question_id"] for a in attempts] == [ids[0], ids[0], ids[1], ids[1], ids[2], ids[3]]
    assert [a["score"] for a in attempts][:2] == [0.0, 1.0] and attempts[4]["score"] == 1.0
    assert len(w.session.graded) == 6 and store.integrity() == "ok"


def test_a_failing_save_is_shown_in_the_widget_logged_and_the_next_try_works(bank, store, monkeypatch, caplog):
    w = widget_for(bank, store, "chain-rule-composite")
    real = store.record_attempt

    def locked(*args, **kwargs):
        raise StoreError("the progress file stayed locked for 30 s: database is locked")

    monkeypatch.setattr(store, "record_attempt", locked)
    w.fields["choice"].value = right_letter(w)
    with caplog.at_level(logging.ERROR, logger="bpcore.widgets"):
        w.submit_button.click()  # raises nothing: the widget reports it
    shown = w.errors.value
    assert "Something went wrong while grading your answer" in shown and "database is locked" in shown
    assert "Your answer was not saved" in shown and "press Submit again" in shown
    assert w.errors.widget.layout.display != "none"
    assert "StoreError" in caplog.text and "Traceback" in caplog.text  # the log has the whole story
    assert store.count() == 0 and not w.submit_button.disabled
    w.submit_button.click()
    assert "(failed 2 times in a row)" in w.errors.value  # a second failure reads as new
    monkeypatch.setattr(store, "record_attempt", real)
    w.submit_button.click()  # usable: the next try is graded and saved, the message goes
    assert GREEN in w.feedback.value and w.errors.value == "" and w.errors.widget.layout.display == "none"
    assert store.count() == 1


def test_a_failure_after_saving_says_the_answer_was_saved(bank, store, monkeypatch):
    from bpcore.quiz import widget as widget_module

    w = widget_for(bank, store, "chain-rule-composite")
    monkeypatch.setattr(widget_module.schedule, "describe_due", lambda due: 1 / 0)
    w.fields["choice"].value = wrong_letter(w)
    w.submit_button.click()
    assert "ZeroDivisionError" in w.errors.value and "Your answer was saved" in w.errors.value
    assert store.count() == 1


def test_every_button_reports_its_failures(bank, store, monkeypatch):
    w = widget_for(bank, store, "chain-rule-vjp", "training-momentum")
    monkeypatch.setattr(w.session, "grade", lambda *a, **k: 1 / 0)
    w.submit_button.click()  # Reveal
    w.rating_buttons[2].click()
    assert "saving your rating" in w.errors.value and "not saved" in w.errors.value
    assert w.ratings.layout.display == "flex"  # still there to rate again
    monkeypatch.setattr(w.session, "instance", lambda q: 1 / 0)
    w.next_button.click()
    assert "moving to the next question" in w.errors.value and "no progress is lost" in w.errors.value


def test_enter_in_an_answer_box_submits_once(bank, store):
    w = widget_for(bank, store, "chain-rule-central-difference", "chain-rule-backward-order")
    w.fields["value"].value = "not a number"
    press_enter(w.fields["value"])
    assert "Could not read that answer" in w.feedback.value and store.count() == 0
    w.fields["value"].value = str(w.instance.key)
    press_enter(w.fields["value"])
    assert GREEN in w.feedback.value and "Could not read" not in w.feedback.value
    press_enter(w.fields["value"])  # answered: Submit is disabled, and so is Enter
    assert store.count() == 1
    w.next_button.click()
    w.fields["value"].value = "a b c d e"
    press_enter(w.fields["value"])
    assert store.count() == 2


def test_a_new_submit_replaces_the_could_not_read_message(bank, store):
    w = widget_for(bank, store, "chain-rule-central-difference")
    w.fields["value"].value = "abc"
    w.submit_button.click()
    first = w.feedback.value
    w.submit_button.click()  # the same unreadable answer: the message must visibly change
    assert "Could not read that answer (try 2)" in w.feedback.value and w.feedback.value != first
    w.fields["value"].value = "0"
    w.submit_button.click()
    assert "Could not read" not in w.feedback.value and RED in w.feedback.value


def test_the_session_score_counts_questions_with_their_first_try(bank, store):
    w = widget_for(bank, store, "chain-rule-composite", "three-layer-delta-hidden")
    for letter in [*wrong_letters(w)[:2], right_letter(w)]:  # two wrong tries, then right
        w.fields["choice"].value = letter
        w.submit_button.click()
    assert "<b>0</b> / 1 answered" in w.score.value and len(store.attempts()) == 3
    w.next_button.click()
    w.solution_button.click()  # a miss
    w.next_button.click()
    assert "Finished: 0 / 2 answered of 2 questions" in w.feedback.value
    assert "<b>0</b> / 2 answered" in w.score.value


def test_a_mock_interview_shows_no_score_until_the_report(bank, store):
    w = widget_for(bank, store, "chain-rule-composite", "three-layer-delta-hidden", mock=True)
    w.fields["choice"].value = right_letter(w)
    w.submit_button.click()
    assert "Score" not in w.score.value and "Answered 1 of 2 questions" in w.score.value
    w.next_button.click()
    w.fields["choice"].value = wrong_letter(w)  # wrong
    w.submit_button.click()
    assert "Score" not in w.score.value and RED not in w.feedback.value
    w.next_button.click()
    assert "Finished: 1 / 2" in w.feedback.value and "Score this session: <b>1</b> / 2" in w.score.value


def test_choice_lists_lay_out_for_long_labels(bank, store):
    from bpcore.quiz.widget import CHOICES_CLASS

    w = widget_for(bank, store, "three-layer-bughunt-tanh", "chain-rule-paths-add")
    fix = w.fields["fix"]
    assert CHOICES_CLASS in fix._dom_classes and fix.layout.width == "auto"
    assert f".{CHOICES_CLASS}" in w.header.value and "height: auto" in w.header.value
    w.next_button.click()
    assert all(CHOICES_CLASS in box._dom_classes for box in w.fields.values())


def test_the_dashboard_refreshes_and_reports_a_failure(bank, store, monkeypatch):
    board = quiz.dashboard(store=store)
    assert "attempts: 0" in board.value
    widget_for(bank, store, "training-momentum").solution_button.click()
    board.refresh_button.click()
    assert "attempts: 1" in board.value and board.errors.value == ""
    monkeypatch.setattr(store, "review_states", lambda: 1 / 0)
    board.refresh_button.click()
    assert "reading your progress" in board.errors.value and "attempts: 1" in board.value
    monkeypatch.undo()
    board.refresh_button.click()
    assert board.errors.value == ""


def test_dashboard_shows_every_full_title_with_the_id_show_takes(bank, store):
    import html

    value = quiz.dashboard(store=store).value
    assert max(len(title) for title in bank.titles.values()) > 40  # long titles exist, and none is cut
    for topic, title in bank.titles.items():
        row = re.search(rf"<tr><td[^>]*>{re.escape(html.escape(title))}</td><td[^>]*><code>(\w+)</code>", value)
        assert row, f"no row with the full title {title!r} and its id in the dashboard:\n{value}"
        assert row.group(1) == topic and bank.select(topic), f"{title!r} shows the id {row.group(1)!r}, not {topic!r}"
    assert 'bp.quiz.show(topic="id")' in value
