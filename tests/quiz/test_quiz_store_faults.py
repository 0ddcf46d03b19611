"""The progress store under injected faults: bad import files, a file set aside under a live writer,
damage only a read finds, unusable places, a full disk, a crowd opening a new store, a writer during export.

Every fault ends in one StoreError (the CLI: one line on stderr and exit 2), never a traceback, and
nothing already saved is lost. Run as root, chmod cannot stop reads or writes, so permission faults are
injected where the store looks (``_open_fd``, the folder probe, a read-only connection) as well.
"""

import copy
import errno
import io
import json
import os
import random
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bpcore.quiz import schedule
from bpcore.quiz import store as store_module
from bpcore.quiz.cli import main
from bpcore.quiz.store import Store, StoreError

ROOT = os.geteuid() == 0


def answer(store, question_id="q", seed=0, pad=""):
    """Record a graded attempt with a real FSRS review, as a session does."""
    return store.record_attempt(
        question_id,
        seed,
        {"given": "b" + pad},
        1.0,
        mode="test",
        rating=3,
        review=lambda old: schedule.review(old, question_id, 3),
    )


def kept_files(home):
    return [p for p in home.glob("progress.db.damaged-*") if not p.name.endswith(("-wal", "-shm"))]


def snapshot(store):
    return [(a["uid"], a["seed"]) for a in store.attempts()], store.review_states()


def no_traceback(capsys, code):
    out = capsys.readouterr()
    assert code == 2, out
    assert "Traceback" not in out.err + out.out
    lines = [line for line in out.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("bpcore: "), out.err
    return lines[0]


# ----------------------------------------------------------------------------- 1. import


@pytest.fixture
def export(tmp_path, store):
    """An export of two good attempts and one review state; returns (path, document)."""
    answer(store, "a", 1)
    answer(store, "b", 2)
    path = tmp_path / "export.json"
    store.export_json(path)
    return path, json.loads(path.read_text())


FUTURE = (datetime.now(UTC) + timedelta(days=400)).isoformat()
BAD_ROWS = [
    ("attempts", "at", "yesterday", "'at'"),
    ("attempts", "at", "2024-01-01T00:00:00", "no time zone"),
    ("attempts", "at", FUTURE, "in the future"),
    ("attempts", "score", 7, "'score' is 7"),
    ("attempts", "score", float("nan"), "'score' is nan"),
    ("attempts", "score", "1", "'score'"),
    ("attempts", "rating", 9, "'rating' is 9"),
    ("attempts", "rating", True, "'rating' is True"),
    ("attempts", "uid", None, "'uid' is None"),
    ("attempts", "uid", "\ud800", "'uid'"),
    ("attempts", "seed", "abc", "'seed' is 'abc'"),
    ("attempts", "seed", 10**30, "'seed'"),
    ("attempts", "hints_used", -1, "'hints_used' is -1"),
    ("attempts", "seconds", -2.0, "'seconds' is -2.0"),
    ("attempts", "mode", "", "'mode'"),
    ("attempts", "question_id", 5, "'question_id' is 5"),
    ("review_state", "due", "soon", "'due'"),
    ("review_state", "card", {}, "card is missing card_id"),
    ("review_state", "card", [], "expected an FSRS card"),
    ("review_state", "card", "x", "expected an FSRS card"),
    ("review_state", "reps", 0, "'reps' is 0"),
    ("review_state", "reps", "2", "'reps'"),
    ("review_state", "updated", FUTURE, "in the future"),
    ("review_state", "updated", 12, "'updated'"),
]


@pytest.mark.parametrize(
    ("table", "field", "value", "message"),
    BAD_ROWS,
    # ids without the values: FUTURE is made at import time, and pytest-xdist's workers must collect the same ids
    ids=[f"{table}-{field}-{index}" for index, (table, field, _, _) in enumerate(BAD_ROWS)],
)
def test_an_import_with_one_bad_field_is_refused_whole(tmp_path, export, bank, table, field, value, message):
    _, document = export
    with Store(tmp_path / "other" / "progress.db") as other:
        answer(other, "c", 3)
        before = snapshot(other)
        bad = copy.deepcopy(document)
        bad[table][-1][field] = value  # the last row: the good rows before it must not be applied either
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(bad))
        with pytest.raises(StoreError, match=rf"{table}\[{len(bad[table]) - 1}\].*{message}") as refused:
            other.import_json(path)
        assert "nothing was imported" in str(refused.value)
        assert snapshot(other) == before
        from bpcore.quiz.stats import summarise

        summarise(bank, other)  # stats still work afterwards


def test_a_card_fsrs_cannot_use_and_a_due_that_disagrees_are_refused(tmp_path, export, store):
    _, document = export
    for change, message in (
        (lambda s: s["card"].update(state=7), "state is 7"),
        (lambda s: s["card"].update(stability=-1), "stability is -1"),
        (lambda s: s.update(due="2031-01-01T00:00:00+00:00"), "card says"),
        (lambda s: s["card"].pop("due"), "missing due"),
    ):
        bad = copy.deepcopy(document)
        change(bad["review_state"][0])
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(StoreError, match=message):
            store.import_json(tmp_path / "bad.json")


def test_import_twice_is_once_and_never_rolls_local_progress_back(tmp_path, export):
    path, document = export
    with Store(tmp_path / "other" / "progress.db") as other:
        assert other.import_json(path) == {"attempts": 2, "review_state": 2}
        assert other.import_json(path) == {"attempts": 0, "review_state": 0}
        answer(other, "a", 9)  # local progress after the export
        newer = other.review_state("a")
        assert newer["reps"] == 2
        assert other.import_json(path) == {"attempts": 0, "review_state": 0}  # the old state does not win
        assert other.review_state("a") == newer and other.count() == 3
        # the same old times written in another zone: as text they sort later, as times they are not newer
        shifted = copy.deepcopy(document)
        for s in shifted["review_state"]:
            s["updated"] = datetime.fromisoformat(s["updated"]).astimezone(timezone(timedelta(hours=5))).isoformat()
            assert s["updated"] > newer["updated"]
        (tmp_path / "shifted.json").write_text(json.dumps(shifted))
        assert other.import_json(tmp_path / "shifted.json") == {"attempts": 0, "review_state": 0}
        assert other.review_state("a") == newer


@pytest.mark.parametrize(
    "content",
    ['{"format": "bpcore-progress", "version": "1", "attempts": [], "review_state": []}', "[" * 100_000],
)
def test_odd_export_files_are_refused_with_a_message(tmp_path, store, content):
    (tmp_path / "odd.json").write_text(content)
    with pytest.raises(StoreError):
        store.import_json(tmp_path / "odd.json")


def test_a_bad_import_on_the_command_line_is_one_line_and_exit_2(home, export, tmp_path, capsys):
    _, document = export
    document["attempts"][0]["at"] = "yesterday"
    (tmp_path / "bad.json").write_text(json.dumps(document))
    line = no_traceback(capsys, main(["import", str(tmp_path / "bad.json")]))
    assert "attempts[0]" in line and "'at'" in line


# ----------------------------------------------------------------------------- 2. set aside under a writer


def set_aside_by_hand(path):
    """What another process's set-aside does: rename the file and its -wal and -shm."""
    kept = path.with_name(path.name + ".damaged-test")
    os.rename(path, kept)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(str(path) + suffix):
            os.rename(str(path) + suffix, str(kept) + suffix)
    return kept


def test_a_writer_whose_file_was_set_aside_refuses_loudly_and_moves_on(home, store):
    for seed in range(5):
        answer(store, seed=seed)
    kept = set_aside_by_hand(store.path)
    with Store() as fresh:  # another session starts the fresh file
        answer(fresh, "other", 100)
    with pytest.raises(StoreError, match=r"Not saved: .*set aside"):
        answer(store, seed=5)
    answer(store, seed=6)  # the next answer goes into the file that is now at the path
    with Store() as now:
        assert sorted(a["seed"] for a in now.attempts()) == [6, 100]
    with Store(kept) as old:
        assert sorted(a["seed"] for a in old.attempts()) == [0, 1, 2, 3, 4]  # nothing went into the kept copy
    assert store.notice and "set aside" in store.notice


WRITER = r"""
import sys
from bpcore.quiz import schedule
from bpcore.quiz.store import Store, StoreError
store = Store()
i = 0
while i < 1500:
    try:
        store.record_attempt("q", i, {"i": i}, 1.0, mode="test", rating=3,
                             review=lambda old: schedule.review(old, "q", 3))
        print("saved", i, flush=True)
    except StoreError as error:
        print("refused", i, str(error).replace("\n", " "), flush=True)
    i += 1
"""


def test_every_answer_acknowledged_after_a_set_aside_is_in_the_new_file(home, child_env, python):
    Store().close()
    writer = subprocess.Popen([python, "-c", WRITER], env=child_env, stdout=subprocess.PIPE, text=True)
    lines = []
    while len(lines) < 200:
        lines.append(writer.stdout.readline())
    kept = set_aside_by_hand(home / "progress.db")
    out, _ = writer.communicate(timeout=300)
    lines += out.splitlines()
    assert writer.returncode == 0
    saved = [int(line.split()[1]) for line in lines if line.startswith("saved")]
    refused = [line for line in lines if line.startswith("refused")]
    assert len(refused) <= 1 and all("set aside" in line for line in refused)
    with Store() as now, Store(kept) as old:
        everywhere = sorted(a["seed"] for a in now.attempts() + old.attempts())
        assert everywhere == sorted(saved)  # every acknowledged answer is in one file or the other
        assert len(now.attempts()) > 0 and max(a["seed"] for a in old.attempts()) < min(
            a["seed"] for a in now.attempts()
        )


# ----------------------------------------------------------------------------- 3. damage found by reading


def poison(path, question_id="q", seed=999):
    """An attempt whose answer is not UTF-8: SQLite's quick check passes, every read of it fails."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "INSERT INTO attempts (uid, question_id, seed, answer, score, hints_used, seconds, mode, rating, at) "
        "VALUES ('bad', ?, ?, CAST(X'FF22FE' AS TEXT), 1, 0, 0, 'test', 3, ?)",
        (question_id, seed, datetime.now(UTC).isoformat()),
    )
    assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    conn.close()


def test_damage_only_a_read_finds_is_set_aside_and_the_rest_salvaged(home, capsys):
    with Store() as store:
        for seed in range(10):
            answer(store, "q", seed)
        states = store.review_states()
    poison(home / "progress.db")
    code = main(["stats"])
    out = capsys.readouterr()
    assert code == 0 and "Traceback" not in out.err + out.out
    assert "could not be read" in out.err and "10 attempts" in out.err and "1 rows could not be read" in out.err
    assert len(kept_files(home)) == 1
    with Store() as store:
        assert sorted(a["seed"] for a in store.attempts()) == list(range(10))
        assert store.review_states() == states and store.notice is None


def test_damage_met_by_a_later_read_is_one_message_and_the_store_carries_on(home, store):
    for seed in range(4):
        answer(store, "q", seed)
    poison(home / "progress.db")  # after the store was opened and checked
    with pytest.raises(StoreError, match=r"could not be read.*the 4 attempts"):
        store.attempts()
    assert sorted(a["seed"] for a in store.attempts()) == [0, 1, 2, 3]
    answer(store, "q", 4)
    assert store.count() == 5 and len(kept_files(home)) == 1


def test_export_salvages_what_is_readable(home, store, tmp_path):
    for seed in range(6):
        answer(store, "q", seed)
    poison(home / "progress.db")
    counts = store.export_json(tmp_path / "out.json")
    assert counts == {"attempts": 6, "review_state": 1, "unreadable": 1}
    document = json.loads((tmp_path / "out.json").read_text())
    assert sorted(a["seed"] for a in document["attempts"]) == list(range(6))


def test_random_corruptions_never_traceback_and_never_invent_attempts(home, tmp_path, bank):
    from bpcore.quiz.stats import summarise

    with Store() as store:
        for seed in range(150):
            answer(store, f"q{seed % 7}", seed, pad="z" * random.Random(seed).randrange(300))
        original = {a["uid"]: a for a in store.attempts()}
    pristine = (home / "progress.db").read_bytes()
    rng = random.Random(14)
    survived = 0
    for trial in range(60):
        data = bytearray(pristine)
        for _ in range(rng.choice((1, 3, 20))):
            at = rng.randrange(100, len(data))
            data[at : at + rng.choice((1, 4, 64))] = os.urandom(rng.choice((1, 4, 64)))
        for side in home.glob("progress.db*"):
            side.unlink()
        (home / "progress.db").write_bytes(bytes(data[: len(pristine)]))
        try:
            with Store() as store:
                summarise(bank, store)
                store.export_json(tmp_path / "out.json")
                for a in store.attempts():
                    assert a["uid"] in original and a["seed"] == original[a["uid"]]["seed"], trial
                answer(store, "after", trial)
            survived += 1
        except StoreError:  # a clear message is allowed; any other exception fails the test
            pass
    assert survived >= 50


# ----------------------------------------------------------------------------- 4. places that cannot hold a store


def test_a_folder_in_place_of_the_file(home, capsys):
    (home / "progress.db").mkdir(parents=True)
    assert "is a folder" in no_traceback(capsys, main(["stats"]))


def test_a_dangling_symlink(home, tmp_path, capsys):
    home.mkdir()
    (home / "progress.db").symlink_to(tmp_path / "unmounted" / "progress.db")
    line = no_traceback(capsys, main(["stats"]))
    assert "symbolic link" in line and "does not exist" in line
    assert not (tmp_path / "unmounted").exists()


def test_a_file_in_place_of_the_folder(home, capsys):
    home.write_text("not a folder")
    assert "is a file" in no_traceback(capsys, main(["stats"]))
    assert home.read_text() == "not a folder"


def test_a_file_you_may_not_open(home, monkeypatch, capsys):
    Store().close()
    if not ROOT:  # a real mode 000 where it has an effect
        os.chmod(home / "progress.db", 0)
        try:
            assert "permission denied" in no_traceback(capsys, main(["stats"]))
        finally:
            os.chmod(home / "progress.db", 0o644)

    def denied(path, flags):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(store_module, "_open_fd", denied)
    line = no_traceback(capsys, main(["stats"]))
    assert "permission denied" in line and "chmod u+rw" in line


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS])
def test_a_folder_you_may_not_write(home, monkeypatch, capsys, code):
    home.mkdir()

    def refused(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(store_module.tempfile, "TemporaryFile", refused)
    line = no_traceback(capsys, main(["stats"]))
    assert str(home) in line and ("read-only" in line or "permission denied" in line)


def test_a_read_only_file_is_refused_when_opened_not_at_the_first_answer(home, monkeypatch, capsys):
    with Store() as store:
        answer(store)
    real = Store._connect

    def read_only(self):  # what SQLite does with a file it may only read (root ignores chmod, so inject it)
        conn = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        return conn

    monkeypatch.setattr(Store, "_connect", read_only)
    assert "read-only" in no_traceback(capsys, main(["stats"]))
    monkeypatch.setattr(Store, "_connect", real)
    with Store() as store:
        assert store.count() == 1


def test_an_answer_that_cannot_be_written_is_reported_not_saved(home, bank):
    from bpcore.quiz.session import Session

    with Store() as store:
        session = Session(store, "quiz", seed=1)
        question = next(q for q in bank.questions if q.kind == "numeric")
        store._conn.execute("PRAGMA query_only = 1")  # the file turned read-only under a live session
        with pytest.raises(StoreError, match="Not saved"):
            session.grade(session.instance(question), "0")
        store._conn.execute("PRAGMA query_only = 0")
        assert store.count() == 0 and session.graded == []


# ----------------------------------------------------------------------------- 5. a full disk


def test_a_full_disk_is_not_saved_and_the_store_intact(home, store):
    for seed in range(3):
        answer(store, seed=seed)
    before = snapshot(store)
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreError, match="Not saved: the disk is full") as refused:
        answer(store, seed=3, pad="x" * 200_000)
    assert "cannot rollback" not in str(refused.value)
    assert snapshot(store) == before and store.integrity() == "ok"
    store._conn.execute(f"PRAGMA max_page_count = {pages * 1000}")
    answer(store, seed=4)
    assert store.count() == 4


def test_a_full_disk_during_export_leaves_no_tmp_file_and_the_old_export(home, store, tmp_path, monkeypatch, capsys):
    answer(store)
    target = tmp_path / "mine.json"
    target.write_text("the previous export")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "fsync", full)
    with pytest.raises(StoreError, match="disk is full"):
        store.export_json(target)
    assert target.read_text() == "the previous export" and not (tmp_path / "mine.json.tmp").exists()
    store.close()
    line = no_traceback(capsys, main(["export", str(target)]))
    assert "disk is full" in line and not (tmp_path / "mine.json.tmp").exists()


# ----------------------------------------------------------------------------- 6. many first opens at once

OPENER = r"""
import pathlib, sys, time
from bpcore.quiz.store import Store
root, name, rounds, crowd = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
failures = 0
for r in range(rounds):
    folder = root / f"round{r}"
    folder.mkdir(exist_ok=True)
    (folder / f"ready-{name}").touch()
    while len(list(folder.glob("ready-*"))) < crowd:  # all start opening the brand-new store together
        time.sleep(0.001)
    try:
        with Store(folder / "progress.db") as store:
            store.record_attempt("q", r, name, 1.0, mode="test")
    except Exception as error:
        failures += 1
        print("failed", r, type(error).__name__, error, flush=True)
print("failures", failures, flush=True)
"""


def test_eight_processes_opening_a_brand_new_store_at_once_all_succeed(tmp_path, child_env, python):
    crowd, rounds = 8, 12
    procs = [
        subprocess.Popen(
            [python, "-c", OPENER, str(tmp_path), str(n), str(rounds), str(crowd)],
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(crowd)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert all(out.strip().endswith("failures 0") for out, _ in outputs), outputs
    for r in range(rounds):
        with Store(tmp_path / f"round{r}" / "progress.db") as store:
            assert store.count() == crowd and store.integrity() == "ok"


def test_opening_a_new_store_waits_for_a_lock_instead_of_failing_at_once(tmp_path):
    """``PRAGMA journal_mode=WAL`` returns "database is locked" at once, without the busy timeout."""
    import threading

    path = tmp_path / "progress.db"
    creator = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    creator.execute("BEGIN IMMEDIATE")  # another process is half-way through creating the file
    threading.Timer(0.3, lambda: creator.execute("COMMIT")).start()
    with Store(path, timeout=10) as store:
        store.record_attempt("q", 1, "x", 1.0, mode="test")
        assert store.count() == 1
    creator.close()


# ----------------------------------------------------------------------------- 7. export snapshot, other files


def test_export_is_one_snapshot_while_a_writer_is_active(home, store, tmp_path):
    for seed in range(5):
        answer(store, "q", seed)
    other = Store()
    fired = []

    def writer_between(sql):  # another session answers between export's reads
        if "review_state" in sql and "SELECT" in sql and not fired:
            fired.append(sql)
            answer(other, "q", 100)

    store._conn.set_trace_callback(writer_between)
    store.export_json(tmp_path / "out.json")
    store._conn.set_trace_callback(None)
    other.close()
    assert fired
    document = json.loads((tmp_path / "out.json").read_text())
    (state,) = document["review_state"]
    assert state["reps"] == len(document["attempts"])  # the review state did not run ahead of the attempts


def test_another_programs_sqlite_file_is_not_written_to(home):
    home.mkdir()
    other = sqlite3.connect(home / "progress.db")
    other.execute("CREATE TABLE meta (k TEXT)")
    other.execute("CREATE TABLE recipes (name TEXT)")
    other.execute("INSERT INTO recipes VALUES ('soup')")
    other.commit()
    other.close()
    before = (home / "progress.db").read_bytes()
    with Store() as store:
        assert "not a bpcore progress file" in store.notice
    (kept,) = home.glob("progress.db.damaged-*")
    assert kept.read_bytes() == before  # not even switched to WAL


def test_a_write_that_fails_under_the_widget_is_shown_as_not_saved(bank, store):
    from bpcore.quiz.widget import QuizWidget

    w = QuizWidget([bank.get("chain-rule-composite")], store=store, seed=7)
    w.fields["choice"].value = w.instance.letter(w.instance.key)
    store._conn.execute("PRAGMA query_only = 1")  # the file cannot be written when the answer comes
    w.submit_button.click()
    assert "Not saved: the progress file" in w.errors.value and "Your answer was not saved" in w.errors.value
    assert store.count() == 0
    store._conn.execute("PRAGMA query_only = 0")
    w.submit_button.click()  # writable again: the same click saves it
    assert store.count() == 1 and w.errors.value == ""


NUMERIC_BANK = """
topic = "demo"
title = "Demo topic"

[[question]]
id = "demo-number"
level = "basic"
kind = "numeric"
prompt = "What is three quarters?"
answer = "3/4"
hints = ["3 divided by 4"]
explanation = "3/4 = 0.75."
notebook = "notebooks/00_start_here.ipynb"
tags = []
"""


def test_an_answer_the_cli_could_not_save_is_one_line_and_exit_2(home, write_bank, monkeypatch, capsys):
    from bpcore.quiz.cli import Terminal

    banks = write_bank("demo.toml", NUMERIC_BANK)
    start = Store._start

    def then_read_only(self):  # the file cannot be written after the store was opened, before the answer
        start(self)
        self._conn.execute("PRAGMA query_only = 1")

    monkeypatch.setattr(Store, "_start", then_read_only)
    keys = iter(["0.75"])

    def read(prompt):
        return next(keys)

    code = main(["--banks", str(banks), "quiz"], Terminal(read=read, out=io.StringIO()))
    line = no_traceback(capsys, code)
    assert "Not saved: the progress file" in line and "read-only" in line
    monkeypatch.setattr(Store, "_start", start)
    with Store() as store:
        assert store.count() == 0 and store.integrity() == "ok"
