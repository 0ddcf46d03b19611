"""Fault injection on the progress store, counted: what was injected, what survived, tracebacks, what was lost.

    .venv/bin/python bench/store_faults.py [--corruptions 200]

Each fault runs a ``bpcore`` command (in this process, so faults can be patched in) against a store
that already holds acknowledged attempts. A fault *survives* when the command ends with exit 0, or
with exit 1/2 and one ``bpcore: ...`` line on stderr; a *traceback* is any other exception. *Lost*
counts acknowledged attempts found neither in the progress file nor in a set-aside copy afterwards.
Random corruptions destroy bytes, so there it counts rows salvaged, and rows altered in place: damage
that leaves a row readable (SQLite keeps no checksums), seen as a uid that matches no original attempt.
Run as root, chmod stops nothing, so permission faults are injected where the store looks.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import json
import os
import random
import sqlite3
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

from bpcore.quiz import schedule
from bpcore.quiz import store as store_module
from bpcore.quiz.cli import main
from bpcore.quiz.store import Store, StoreError, _readable_rows


def fill(home: Path, n: int = 12) -> set[str]:
    with Store(home / "progress.db") as store:
        for i in range(n):
            qid = f"q{i % 3}"
            store.record_attempt(
                qid, i, {"i": i}, 1.0, mode="test", rating=3, review=lambda o, q=qid: schedule.review(o, q, 3)
            )
        return {a["uid"] for a in store.attempts()}


def found(home: Path) -> set[str]:
    """Every attempt uid still readable in the folder: the progress file and any set-aside copy."""
    uids = set()
    for path in home.glob("progress.db*"):
        if path.is_file() and not path.name.endswith(("-wal", "-shm", ".tmp")):
            uids |= {a["uid"] for a in _readable_rows(path)[0]}
    return uids


def run(argv, home: Path) -> tuple[int | None, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except BaseException as error:  # a traceback the learner would see
            return None, f"{type(error).__name__}: {error}"
    return code, err.getvalue()


def survived(code, err: str) -> bool:
    lines = [line for line in err.splitlines() if line.strip()]
    return code == 0 or (code in (1, 2) and len(lines) >= 1 and all(line.startswith("bpcore: ") for line in lines))


def import_faults(home: Path):
    fill(home)
    export = home.parent / "export.json"
    with Store(home / "progress.db") as store:
        store.export_json(export)
    good = json.loads(export.read_text())
    future = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    bad = [("attempts", "at", "yesterday"), ("attempts", "at", future), ("attempts", "at", "2024-01-01T00:00:00"),
           ("attempts", "score", 7), ("attempts", "score", float("nan")), ("attempts", "rating", 9),
           ("attempts", "uid", None), ("attempts", "seed", "abc"), ("attempts", "seed", 10**30),
           ("attempts", "hints_used", -1), ("attempts", "seconds", -1), ("attempts", "mode", ""),
           ("attempts", "uid", "\ud800"), ("review_state", "due", "soon"), ("review_state", "card", {}),
           ("review_state", "card", "x"), ("review_state", "reps", 0), ("review_state", "updated", future)]  # fmt: skip
    for table, field, value in bad:
        document = json.loads(json.dumps(good))
        document[table][-1][field] = value
        path = home.parent / "bad.json"
        path.write_text(json.dumps(document))
        yield f"import {table}.{field}={value!r:.20}", ["import", str(path)], None


def place_faults():
    """(name, setup(home) -> a patch or None): each runs ``bpcore stats`` in a fresh folder."""

    def denied(path, flags):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    def folder_refused(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    def read_only(self):
        conn = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        return conn

    def filled(patch):
        return lambda home: (fill(home), patch)[1]

    yield "progress.db is a folder", lambda home: (home / "progress.db").mkdir(parents=True)
    yield "dangling symlink", lambda home: (home.mkdir(), (home / "progress.db").symlink_to(home / "nowhere" / "x"))
    yield "BPCORE_HOME is a file", lambda home: home.write_text("x")
    yield "mode 000 (injected)", filled(mock.patch.object(store_module, "_open_fd", denied))
    yield (
        "read-only folder (injected)",
        filled(mock.patch.object(store_module.tempfile, "TemporaryFile", folder_refused)),
    )
    yield "read-only file (injected)", filled(mock.patch.object(Store, "_connect", read_only))


def write_faults(tally):
    """Faults that hit a write: a full disk, a file set aside under a live writer, a full disk during export."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        acked = fill(home)
        with Store(home / "progress.db") as store:
            pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
            store._conn.execute(f"PRAGMA max_page_count = {pages}")
            tally.record("disk full on an answer", *attempt(store, "x" * 200_000, "disk is full"))
        tally.lost += len(acked - found(home))
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        acked = fill(home)
        target = Path(tmp) / "out.json"
        with mock.patch.object(store_module.os, "fsync", side_effect=OSError(errno.ENOSPC, "No space left")):
            os.environ["BPCORE_HOME"] = str(home)
            code, err = run(["export", str(target)], home)
        ok = survived(code, err) and not Path(str(target) + ".tmp").exists()
        tally.record("disk full during export", ok, code is None)
        tally.lost += len(acked - found(home))
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        acked = fill(home)
        with Store(home / "progress.db") as store:
            kept = home / "progress.db.damaged-bench"
            os.rename(home / "progress.db", kept)
            for suffix in ("-wal", "-shm"):
                if Path(str(home / "progress.db") + suffix).exists():
                    os.rename(str(home / "progress.db") + suffix, str(kept) + suffix)
            tally.record("file set aside under a live writer", *attempt(store, "a", "set aside"))
            store.record_attempt("q", 99, "b", 1.0, mode="test")
            acked |= {a["uid"] for a in store.attempts()}
        tally.lost += len(acked - found(home))


def attempt(store, pad, expected) -> tuple[bool, bool]:
    try:
        store.record_attempt("q", 0, pad, 1.0, mode="test")
    except StoreError as error:
        return expected in str(error) and "\n" not in str(error), False
    except BaseException:
        return False, True
    return False, False  # saved although the fault should have stopped it: not a survival


class Tally:
    def __init__(self):
        self.injected = self.survived = self.tracebacks = self.lost = 0

    def record(self, name, ok, traceback):
        self.injected += 1
        self.survived += bool(ok)
        self.tracebacks += bool(traceback)
        if not ok or traceback:
            print(f"  FAILED: {name}")


def corruptions(count: int) -> tuple[int, int, int, int, int]:
    """Random byte damage: (trials, ended with a clear message or worked, tracebacks, altered rows, salvaged)."""
    from bpcore.quiz.bank import load_banks
    from bpcore.quiz.stats import summarise

    bank = load_banks(Path(__file__).resolve().parents[1] / "quizzes")
    ok = tracebacks = invented = salvaged = 0
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        original = fill(home, 150)
        pristine = (home / "progress.db").read_bytes()
        rng = random.Random(14)
        for _ in range(count):
            for side in home.glob("progress.db*"):
                side.unlink()
            data = bytearray(pristine)
            for _ in range(rng.choice((1, 3, 20))):
                at, size = rng.randrange(100, len(data)), rng.choice((1, 4, 64))
                data[at : at + size] = bytes(rng.randrange(256) for _ in range(size))
            (home / "progress.db").write_bytes(bytes(data[: len(pristine)]))
            try:
                with Store(home / "progress.db") as store:
                    summarise(bank, store)
                    store.export_json(home.parent / "out.json")
                    uids = {a["uid"] for a in store.attempts()}
                    invented += len(uids - original)
                    salvaged += len(uids)
                ok += 1
            except StoreError:
                ok += 1
            except Exception as error:
                tracebacks += 1
                print(f"  traceback: {type(error).__name__}: {error}")
    return count, ok, tracebacks, invented, salvaged


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corruptions", type=int, default=200)
    args = parser.parse_args()
    tally = Tally()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        os.environ["BPCORE_HOME"] = str(home)
        for name, argv, _ in import_faults(home):
            before = found(home)
            code, err = run(argv, home)
            tally.record(name, survived(code, err), code is None)
            tally.lost += len(before - found(home))
    for name, setup in place_faults():
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "home"
            os.environ["BPCORE_HOME"] = str(home)
            patch = setup(home)
            patch = patch if hasattr(patch, "__enter__") else None
            before = found(home) if home.is_dir() else set()
            with patch or contextlib.nullcontext():
                code, err = run(["stats"], home)
            tally.record(name, survived(code, err) and code != 0, code is None)
            tally.lost += len(before - found(home)) if home.is_dir() else 0
    write_faults(tally)
    trials, ok, tracebacks, invented, salvaged = corruptions(args.corruptions)
    print(f"named faults injected: {tally.injected}, survived: {tally.survived}, tracebacks: {tally.tracebacks}, "
          f"acknowledged attempts lost: {tally.lost}")  # fmt: skip
    print(f"random corruptions: {trials}, clear message or worked: {ok}, tracebacks: {tracebacks}, "
          f"rows altered in place (uid changed, still readable): {invented}, "
          f"rows salvaged: {salvaged} of {trials * 150}")  # fmt: skip
    sys.exit(0 if tally.survived == tally.injected and not tally.tracebacks + tracebacks + tally.lost else 1)


if __name__ == "__main__":
    main_bench()
