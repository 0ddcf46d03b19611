"""The progress store: nothing lost under concurrency, kills, interrupts or a damaged file."""

import concurrent.futures
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

from bpcore.quiz.store import Store, StoreError, data_dir, default_path

WRITER = r"""
import pathlib, sys, time
from bpcore.quiz import schedule
from bpcore.quiz.store import Store

name, count, go = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3])
store = Store()
print("ready", flush=True)
while not go.exists():
    time.sleep(0.002)
for i in range(count):
    qid = f"q{i % 5}"
    store.record_attempt(qid, i, {"writer": name, "i": i}, 1.0, mode="test", rating=3,
                         review=lambda old, qid=qid: schedule.review(old, qid, 3))
print("done", flush=True)
"""

ENDLESS_WRITER = r"""
import hashlib
from bpcore.quiz.store import Store

store = Store()
i = 0
while True:
    pad = "x" * 20000 + str(i)
    answer = {"i": i, "pad": pad, "sha": hashlib.sha1(pad.encode()).hexdigest()}
    store.record_attempt("q", i, answer, 0.5, mode="test", rating=2,
                         review=lambda old: {"card": {"n": old["card"]["n"] + 1 if old else 1}, "due": "2000-01-01"})
    i += 1
    if i == 20:
        print("writing", flush=True)
"""


def record(store, question_id="q", seed=0, score=1.0, **kwargs):
    return store.record_attempt(question_id, seed, {"given": "b"}, score, mode="test", **kwargs)


def test_the_folder_follows_bpcore_home(home):
    assert data_dir() == home and default_path() == home / "progress.db"
    with Store() as store:
        assert store.path == home / "progress.db" and store.path.exists() and store.notice is None


def test_attempt_and_review_state_are_written_together(store):
    store.record_attempt(
        "q1",
        42,
        [[1, 2]],
        0.5,
        hints_used=2,
        seconds=3.5,
        mode="quiz",
        rating=2,
        review=lambda old: {"card": {"seen": 1}, "due": "2030-01-01T00:00:00+00:00"},
    )
    (attempt,) = store.attempts()
    assert attempt["question_id"] == "q1" and attempt["seed"] == 42 and attempt["answer"] == [[1, 2]]
    assert (attempt["score"], attempt["hints_used"], attempt["seconds"], attempt["mode"], attempt["rating"]) == (
        0.5,
        2,
        3.5,
        "quiz",
        2,
    )
    state = store.review_state("q1")
    assert state["card"] == {"seen": 1} and state["reps"] == 1 and state["due"].startswith("2030")


def test_the_attempt_log_is_append_only(store):
    record(store)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store._conn.execute("UPDATE attempts SET score = 0")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store._conn.execute("DELETE FROM attempts")
    assert store.attempts()[0]["score"] == 1.0


def test_an_interrupt_mid_write_rolls_the_whole_attempt_back(store):
    record(store, review=lambda old: {"card": {"n": 1}, "due": "2030-01-01"})

    def interrupted(old):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        record(store, seed=1, review=interrupted)
    assert store.count() == 1 and store.review_state("q")["reps"] == 1
    record(store, seed=2)  # and the store carries on
    assert [a["seed"] for a in store.attempts()] == [0, 2] and store.integrity() == "ok"


def test_two_processes_writing_at_once_lose_nothing(home, tmp_path, child_env, python):
    go, per_writer = tmp_path / "go", 120
    Store().close()  # create the file first, so both writers open an existing database
    writers = [
        subprocess.Popen(
            [python, "-c", WRITER, name, str(per_writer), str(go)],
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for w in writers:
        assert w.stdout.readline().strip() == "ready"
    go.touch()  # both start writing at the same moment
    for w in writers:
        _, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
    with Store() as store:
        attempts = store.attempts()
        assert len(attempts) == 2 * per_writer
        for name in ("a", "b"):
            assert sorted(a["answer"]["i"] for a in attempts if a["answer"]["writer"] == name) == list(
                range(per_writer)
            )
        assert sum(s["reps"] for s in store.review_states().values()) == 2 * per_writer
        assert store.integrity() == "ok"


def test_a_killed_writer_loses_at_most_the_attempt_in_flight(home, child_env, python):
    import hashlib

    writer = subprocess.Popen([python, "-c", ENDLESS_WRITER], env=child_env, stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    time.sleep(0.3)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    with Store() as store:
        assert store.notice is None and store.integrity() == "ok"
        attempts = store.attempts()
        assert len(attempts) >= 20
        assert [a["seed"] for a in attempts] == list(range(len(attempts)))  # no gap, no half row
        for a in attempts:
            assert a["answer"]["i"] == a["seed"]
            assert hashlib.sha1(a["answer"]["pad"].encode()).hexdigest() == a["answer"]["sha"]
        state = store.review_state("q")
        assert state["reps"] == len(attempts) == state["card"]["n"]  # attempt and state moved together
        record(store, seed=len(attempts))
        assert store.count() == len(attempts) + 1


def test_a_damaged_file_is_kept_aside_and_a_fresh_store_starts(home):
    home.mkdir(parents=True)
    garbage = b"this is not a database" * 200
    (home / "progress.db").write_bytes(garbage)
    with Store() as store:
        kept = list(home.glob("progress.db.damaged-*"))
        assert len(kept) == 1 and kept[0].read_bytes() == garbage  # nothing thrown away
        assert "could not be read" in store.notice and str(kept[0]) in store.notice
        assert store.count() == 0
        record(store)
        assert store.count() == 1
    with Store() as again:  # the fresh store is fine next time: no second notice
        assert again.notice is None and again.count() == 1


def test_a_corrupted_page_is_detected(home):
    with Store() as store:
        for i in range(300):
            store.record_attempt("q", i, {"pad": "y" * 2000}, 1.0)
    path = home / "progress.db"
    data = bytearray(path.read_bytes())
    data[4096 * 3 : 4096 * 6] = os.urandom(4096 * 3)
    path.write_bytes(bytes(data))
    with Store() as store:
        assert store.notice is not None and list(home.glob("progress.db.damaged-*"))
        assert store.count() == 0 and store.integrity() == "ok"


def test_an_unrelated_sqlite_file_is_not_overwritten(home):
    home.mkdir(parents=True)
    other = sqlite3.connect(home / "progress.db")
    other.execute("CREATE TABLE recipes (name TEXT)")
    other.commit()
    other.close()
    with Store() as store:
        assert "not a bpcore progress file" in store.notice
    kept = next(home.glob("progress.db.damaged-*"))
    assert sqlite3.connect(kept).execute("SELECT name FROM sqlite_master").fetchone() == ("recipes",)


def test_a_newer_schema_is_refused_not_replaced(home):
    with Store() as store:
        store._conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="newer bpcore"):
        Store()
    assert not list(home.glob("progress.db.damaged-*"))


def test_export_and_import_merge_without_duplicates(tmp_path, store):
    from bpcore.quiz import schedule

    card = schedule.review(None, "a", 3)
    record(store, question_id="a", review=lambda old: card)
    record(store, question_id="b", seed=7)
    exported = tmp_path / "progress.json"
    assert store.export_json(exported) == {"attempts": 2, "review_state": 1}
    document = json.loads(exported.read_text())
    assert document["format"] == "bpcore-progress" and document["attempts"][1]["seed"] == 7

    with Store(tmp_path / "other" / "progress.db") as other:
        record(other, question_id="c")
        assert other.import_json(exported) == {"attempts": 2, "review_state": 1}
        assert other.import_json(exported) == {"attempts": 0, "review_state": 0}  # idempotent
        assert sorted(a["question_id"] for a in other.attempts()) == ["a", "b", "c"]
        assert other.review_state("a")["card"] == card["card"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not JSON"),
        ('{"format": "other"}', "not a bpcore progress export"),
        ('{"format": "bpcore-progress", "attempts": [{}], "review_state": []}', r"attempts\[0\] is missing uid"),
    ],
)
def test_a_bad_import_file_is_refused_and_changes_nothing(tmp_path, store, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(StoreError, match=message):
        store.import_json(path)
    assert store.count() == 0


def run_in_thread(function, *args):
    """Call ``function`` on a new thread (as a Jupyter kernel subshell would); re-raise what it raised there."""
    failures = []

    def target():
        try:
            function(*args)
        except BaseException as error:  # handed back to the test's thread
            failures.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive()
    if failures:
        raise failures[0]


def test_a_store_opened_on_one_thread_records_from_others(store):
    record(store, seed=0)  # the thread that opened it
    for seed in (1, 2, 3):  # several in a row on new threads
        run_in_thread(record, store, "q", seed)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:  # two long-lived threads taking turns
        for seed in range(4, 12):
            pool.submit(record, store, "q", seed).result()
    run_in_thread(lambda: store.attempts() and store.review_states() and store.count())  # reads too
    assert [a["seed"] for a in store.attempts()] == list(range(12)) and store.integrity() == "ok"


def test_threads_writing_at_once_take_turns_and_lose_nothing(store):
    def count_up(old):
        return {"card": {"n": old["card"]["n"] + 1 if old else 1}, "due": "2030-01-01"}

    def writer(first):
        for seed in range(first, 200, 4):
            record(store, seed=seed, review=count_up)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(writer, first) for first in range(4)]:
            future.result()
    assert sorted(a["seed"] for a in store.attempts()) == list(range(200))
    state = store.review_state("q")
    assert state["reps"] == 200 == state["card"]["n"]  # no lost update: every transaction saw the last one
    assert store.integrity() == "ok"
