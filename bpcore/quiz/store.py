"""Progress that is never lost: an append-only attempt log and each question's review state, in SQLite.

Where: ``$BPCORE_HOME/progress.db`` if ``BPCORE_HOME`` is set, else the platform's per-user data
folder (``~/.local/share/bpcore`` on Linux, ``~/Library/Application Support/bpcore`` on macOS,
``%LOCALAPPDATA%\\bpcore`` on Windows).

How nothing is lost:

* WAL journal and ``synchronous=FULL``: a committed attempt survives a killed process (and a power cut).
* Every write is one ``BEGIN IMMEDIATE`` transaction holding the attempt *and* the review state it
  changes: both land or neither does, so a process killed mid-write loses at most that attempt.
* A busy timeout: a notebook and a terminal writing at the same moment take turns instead of failing.
* Any thread may use a store: Jupyter runs widget callbacks on whichever thread (kernel subshell) last
  touched the widget, not always the one that opened the store. The store holds one connection, opened
  with ``check_same_thread=False``, and a lock that every use of it takes, so threads take turns and a
  transaction never interleaves with another thread's statements.
* Triggers refuse UPDATE and DELETE on the attempt log.
* A file that is not a readable progress database is never overwritten: it is renamed to
  ``progress.db.damaged-<time>``, ``store.notice`` says so, and a fresh store starts.

The store knows nothing about scheduling: :meth:`Store.record_attempt` takes a ``review`` function
that turns the old review state into the new one inside the same transaction.
"""

from __future__ import annotations

import inspect
import json
import os
import sqlite3
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
EXPORT_FORMAT = "bpcore-progress"
BUSY_TIMEOUT_SECONDS = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uid         TEXT NOT NULL UNIQUE,           -- stable across export and import
    question_id TEXT NOT NULL,
    seed        INTEGER NOT NULL,               -- rebuilds the exact instance that was asked
    answer      TEXT NOT NULL,                  -- JSON of what the learner gave
    score       REAL NOT NULL CHECK (score >= 0 AND score <= 1),
    hints_used  INTEGER NOT NULL CHECK (hints_used >= 0),
    seconds     REAL NOT NULL CHECK (seconds >= 0),
    mode        TEXT NOT NULL,                  -- notebook, quiz, review, mock
    rating      INTEGER CHECK (rating BETWEEN 1 AND 4),
    at          TEXT NOT NULL                   -- ISO 8601, UTC
);
CREATE INDEX IF NOT EXISTS attempts_by_question ON attempts (question_id, at);
CREATE TRIGGER IF NOT EXISTS attempts_no_update BEFORE UPDATE ON attempts
    BEGIN SELECT RAISE(ABORT, 'the attempt log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS attempts_no_delete BEFORE DELETE ON attempts
    BEGIN SELECT RAISE(ABORT, 'the attempt log is append-only'); END;
CREATE TABLE IF NOT EXISTS review_state (
    question_id TEXT PRIMARY KEY,
    card        TEXT NOT NULL,                  -- JSON: the scheduler's card
    due         TEXT NOT NULL,                  -- ISO 8601, UTC: sorts as text
    reps        INTEGER NOT NULL,               -- attempts that updated this state
    updated     TEXT NOT NULL
);
"""
ATTEMPT_FIELDS = ("uid", "question_id", "seed", "answer", "score", "hints_used", "seconds", "mode", "rating", "at")
STATE_FIELDS = ("question_id", "card", "due", "reps", "updated")


class StoreError(RuntimeError):
    """The store cannot be used (locked too long, made by a newer bpcore, a bad import file, ...)."""


class _Damaged(Exception):
    """Internal: the file is not a readable bpcore progress database."""


def data_dir() -> Path:
    """The per-user folder for bpcore's data (``BPCORE_HOME`` overrides it)."""
    if os.environ.get("BPCORE_HOME"):
        return Path(os.environ["BPCORE_HOME"]).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", home / "AppData" / "Local")) / "bpcore"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "bpcore"
    return Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "bpcore"


def default_path() -> Path:
    return data_dir() / "progress.db"


def now_iso(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).astimezone(UTC).isoformat()


def answer_json(answer) -> str:
    """What the learner gave, as JSON. Arrays become lists; a function becomes its name and source text."""

    def plain(value):
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
        if hasattr(value, "data") and isinstance(value.data, np.ndarray):  # a Tensor
            return value.data.tolist()
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if callable(value):
            try:
                source = inspect.getsource(value)
            except (OSError, TypeError):
                source = None
            return {"function": getattr(value, "__name__", repr(value)), "source": source}
        if value is None or isinstance(value, str | int | float | bool):
            return value
        return repr(value)

    return json.dumps(plain(answer))


def _locked(method):
    """Run ``method`` holding the store's lock: the connection is shared by every thread that uses the store."""

    @wraps(method)
    def run(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return run


def _is_damage(error: sqlite3.DatabaseError) -> bool:
    """Corruption or not-a-database, as opposed to a lock or a permission problem."""
    name = getattr(error, "sqlite_errorname", "")
    text = str(error)
    return name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or "malformed" in text or "not a database" in text


class Store:
    """The progress database. ``notice`` holds a message for the learner when a damaged file was set aside."""

    def __init__(self, path=None, timeout: float = BUSY_TIMEOUT_SECONDS):
        self.path = Path(path) if path is not None else default_path()
        self.timeout = timeout
        self.notice: str | None = None
        self._lock = threading.RLock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._open()
        except _Damaged as damage:
            self._set_aside(str(damage))
            self._conn = self._open()

    # -- opening ---------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        # any thread may use the connection; _lock makes them take turns
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        return conn

    def _open(self) -> sqlite3.Connection:
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise _Damaged(f"integrity check failed: {check}")
            self._create(conn)
        except sqlite3.DatabaseError as error:
            conn.close()
            if _is_damage(error):
                raise _Damaged(str(error)) from None
            raise StoreError(f"cannot open the progress file {self.path}: {error}") from None
        except _Damaged:
            conn.close()
            raise
        return conn

    def _create(self, conn: sqlite3.Connection) -> None:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "attempts" not in tables and "meta" not in tables:
            raise _Damaged(f"it is an SQLite file but not a bpcore progress file (tables: {', '.join(sorted(tables))})")
        conn.executescript(_SCHEMA)
        columns = tuple(r[1] for r in conn.execute("PRAGMA table_info(attempts)"))[1:]
        if columns != ATTEMPT_FIELDS:
            raise _Damaged(f"its attempt table has unexpected columns {columns}")
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer bpcore (schema {row[0]}, this one reads {SCHEMA_VERSION}); "
                "upgrade bpcore, or set BPCORE_HOME to use another folder"
            )

    def _still_damaged(self) -> bool:
        """Another process may already have set the file aside and started afresh: look again first."""
        try:
            self._open().close()
        except _Damaged:
            return True
        return False

    def _set_aside(self, reason: str) -> None:
        if not self.path.exists() or not self._still_damaged():
            return
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
        kept = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        counter = 1
        while kept.exists():
            kept = self.path.with_name(f"{self.path.name}.damaged-{stamp}-{counter}")
            counter += 1
        try:
            os.rename(self.path, kept)
        except FileNotFoundError:  # another process moved it a moment ago
            return
        for suffix in ("-wal", "-shm", "-journal"):
            side = Path(str(self.path) + suffix)
            if side.exists():
                os.replace(side, Path(str(kept) + suffix))
        self.notice = (
            f"Your progress file {self.path} could not be read ({reason}). It was kept as {kept} "
            "and a fresh progress file has been started. Nothing was deleted: `bpcore import` restores an export."
        )

    # -- writing ---------------------------------------------------------------------------------
    @_locked
    def _transaction(self, work: Callable[[sqlite3.Connection], object]):
        """Run ``work`` inside BEGIN IMMEDIATE ... COMMIT; any exception (Ctrl-C included) rolls back."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise StoreError(f"the progress file {self.path} stayed locked for {self.timeout:g} s: {error}") from None
        try:
            result = work(self._conn)
            self._conn.execute("COMMIT")
            return result
        except BaseException:
            if self._conn.in_transaction:  # SQLite may have rolled back already (a full disk, an I/O error)
                self._conn.execute("ROLLBACK")
            raise

    def record_attempt(
        self,
        question_id: str,
        seed: int,
        answer,
        score: float,
        hints_used: int = 0,
        seconds: float = 0.0,
        mode: str = "quiz",
        rating: int | None = None,
        review: Callable[[dict | None], dict] | None = None,
        at: datetime | None = None,
    ) -> int:
        """Append one attempt and, in the same transaction, update the question's review state.

        ``review(old_state)`` gets the current state (a dict with "card", "due", "reps") or None,
        and returns {"card": dict, "due": iso string}. Returns the new attempt's row id.
        """
        stamp = now_iso(at)
        row = (
            uuid.uuid4().hex,
            question_id,
            int(seed),
            answer_json(answer),
            float(score),
            int(hints_used),
            max(0.0, float(seconds)),
            mode,
            rating,
            stamp,
        )

        def work(conn):
            cursor = conn.execute(
                f"INSERT INTO attempts ({', '.join(ATTEMPT_FIELDS)}) VALUES ({', '.join('?' * 10)})", row
            )
            if review is not None:
                old = self._state(conn, question_id)
                new = review(old)
                conn.execute(
                    "INSERT INTO review_state VALUES (?, ?, ?, 1, ?) ON CONFLICT (question_id) DO UPDATE SET "
                    "card = excluded.card, due = excluded.due, reps = reps + 1, updated = excluded.updated",
                    (question_id, json.dumps(new["card"]), new["due"], stamp),
                )
            return cursor.lastrowid

        return self._transaction(work)

    # -- reading ---------------------------------------------------------------------------------
    @staticmethod
    def _state(conn, question_id: str) -> dict | None:
        row = conn.execute("SELECT * FROM review_state WHERE question_id = ?", (question_id,)).fetchone()
        return None if row is None else {**dict(row), "card": json.loads(row["card"])}

    @_locked
    def review_state(self, question_id: str) -> dict | None:
        return self._state(self._conn, question_id)

    @_locked
    def review_states(self) -> dict[str, dict]:
        rows = self._conn.execute("SELECT * FROM review_state").fetchall()
        return {r["question_id"]: {**dict(r), "card": json.loads(r["card"])} for r in rows}

    @_locked
    def attempts(self, question_id: str | None = None, mode: str | None = None) -> list[dict]:
        """Attempts, oldest first, as dicts (``answer`` decoded from JSON)."""
        sql, args = "SELECT * FROM attempts WHERE 1 = 1", []
        if question_id is not None:
            sql, args = sql + " AND question_id = ?", [*args, question_id]
        if mode is not None:
            sql, args = sql + " AND mode = ?", [*args, mode]
        rows = self._conn.execute(sql + " ORDER BY id", args).fetchall()
        return [{**dict(r), "answer": json.loads(r["answer"])} for r in rows]

    @_locked
    def count(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]

    @_locked
    def integrity(self) -> str:
        """'ok', or SQLite's description of what is wrong."""
        return self._conn.execute("PRAGMA integrity_check").fetchone()[0]

    # -- export and import -----------------------------------------------------------------------
    @_locked
    def export_json(self, path) -> dict:
        """Write every attempt and review state to ``path`` as JSON; returns the counts."""
        attempts = [dict(r) for r in self._conn.execute("SELECT * FROM attempts ORDER BY id")]
        states = [dict(r) for r in self._conn.execute("SELECT * FROM review_state ORDER BY question_id")]
        for a in attempts:
            a.pop("id")
            a["answer"] = json.loads(a["answer"])
        for s in states:
            s["card"] = json.loads(s["card"])
        document = {
            "format": EXPORT_FORMAT,
            "version": SCHEMA_VERSION,
            "exported": now_iso(),
            "attempts": attempts,
            "review_state": states,
        }
        tmp = Path(str(path) + ".tmp")
        tmp.write_text(json.dumps(document, indent=1), encoding="utf-8")
        os.replace(tmp, path)  # a reader never sees half a file
        return {"attempts": len(attempts), "review_state": len(states)}

    def import_json(self, path) -> dict:
        """Merge an export into this store: attempts are added once (by uid); a review state is taken
        when it is newer than ours. Everything or nothing is imported. Returns the counts added."""
        document = _read_export(Path(path))

        def work(conn):
            added = 0
            for a in document["attempts"]:
                values = [a[f] if f != "answer" else json.dumps(a[f]) for f in ATTEMPT_FIELDS]
                added += conn.execute(
                    f"INSERT OR IGNORE INTO attempts ({', '.join(ATTEMPT_FIELDS)}) VALUES ({', '.join('?' * 10)})",
                    values,
                ).rowcount
            taken = 0
            for s in document["review_state"]:
                old = self._state(conn, s["question_id"])
                if old is None or s["updated"] > old["updated"]:
                    conn.execute(
                        "INSERT OR REPLACE INTO review_state VALUES (?, ?, ?, ?, ?)",
                        (s["question_id"], json.dumps(s["card"]), s["due"], s["reps"], s["updated"]),
                    )
                    taken += 1
            return {"attempts": added, "review_state": taken}

        try:
            return self._transaction(work)
        except sqlite3.IntegrityError as error:
            raise StoreError(f"{path}: an attempt breaks a rule of the log ({error}); nothing was imported") from None

    @_locked
    def close(self) -> None:
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _read_export(path: Path) -> dict:
    """The parsed export, or a StoreError that names the first thing wrong with it."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise StoreError(f"cannot read {path}: {error}") from None
    except json.JSONDecodeError as error:
        raise StoreError(f"{path} is not JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
        raise StoreError(f'{path} is not a bpcore progress export (expected "format": "{EXPORT_FORMAT}")')
    if document.get("version", 0) > SCHEMA_VERSION:
        raise StoreError(f"{path} was exported by a newer bpcore (version {document['version']})")
    for name, fields in (("attempts", ATTEMPT_FIELDS), ("review_state", STATE_FIELDS)):
        rows = document.get(name)
        if not isinstance(rows, list):
            raise StoreError(f"{path}: expected a list under {name!r}, got {type(rows).__name__}")
        for i, row in enumerate(rows):
            missing = [f for f in fields if f not in row] if isinstance(row, dict) else list(fields)
            if missing and not (name == "attempts" and missing == ["rating"]):
                raise StoreError(f"{path}: {name}[{i}] is missing {', '.join(missing)}")
            if name == "attempts":
                row.setdefault("rating", None)
    return document
