"""Progress that is never lost: an append-only attempt log and each question's review state, in SQLite.

Where: ``$BPCORE_HOME/progress.db`` if ``BPCORE_HOME`` is set, else the platform's per-user data
folder (``~/.local/share/bpcore`` on Linux, ``~/Library/Application Support/bpcore`` on macOS,
``%LOCALAPPDATA%\\bpcore`` on Windows).

How nothing is lost:

* WAL journal and ``synchronous=FULL``: a committed attempt survives a killed process (and a power cut).
* Every write is one ``BEGIN IMMEDIATE`` transaction holding the attempt *and* the review state it
  changes: both land or neither does, so a process killed mid-write loses at most that attempt.
* A busy timeout: a notebook and a terminal writing at the same moment take turns instead of failing;
  several processes creating a brand-new store at once take turns too (switching to WAL is retried).
* Any thread may use a store: Jupyter runs widget callbacks on whichever thread (kernel subshell) last
  touched the widget, not always the one that opened the store. The store holds one connection, opened
  with ``check_same_thread=False``, and a lock that every use of it takes, so threads take turns and a
  transaction never interleaves with another thread's statements.
* Triggers refuse UPDATE and DELETE on the attempt log.
* A file that is not a readable progress database is never overwritten: it is renamed to
  ``progress.db.damaged-<time>``, what can still be read from it is copied into a fresh store, and
  ``store.notice`` says so. Damage is looked for when the file is opened (SQLite's quick check, then
  every row decoded) and whenever a read meets it later. Another SQLite file is recognised before
  anything is written to it.
* A writer notices when its file was set aside by another process (the file at the path is no longer
  the one it opened): it refuses that answer loudly and continues in the new file.
* Every failure is a :class:`StoreError` whose message says what is wrong and what to do; a failed
  write says the answer was not saved (a full disk, a read-only file, a lock held too long).

The store knows nothing about scheduling: :meth:`Store.record_attempt` takes a ``review`` function
that turns the old review state into the new one inside the same transaction. Only an import asks
the scheduler whether a review state from a file is a card it can use.
"""

from __future__ import annotations

import errno
import inspect
import json
import math
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
EXPORT_FORMAT = "bpcore-progress"
BUSY_TIMEOUT_SECONDS = 30.0
CLOCK_SKEW = timedelta(minutes=10)  # an imported time may be this far in the future (another machine's clock)
SALVAGE_SECONDS = 20.0  # reading a damaged file row by row stops after this long

_TABLES = {"meta", "attempts", "review_state", "sqlite_sequence"}
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
FIX_HINT = "or set BPCORE_HOME to another folder"
# SQLite's message about a damaged file may quote its bytes, and then fails to decode itself
_SQL_FAILURE = (sqlite3.DatabaseError, UnicodeDecodeError)


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


# ----------------------------------------------------------------------------- row checks


def _whole(value, low: int = -(2**63), high: int = 2**63 - 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _number(value, low: float, high: float) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value) and low <= value <= high
    except OverflowError:  # an int too large for a float
        return False


def _text(value) -> bool:
    if not isinstance(value, str) or not value or len(value) > 10_000:
        return False
    try:
        value.encode("utf-8")  # a lone surrogate from JSON's \ud800 cannot be stored
    except UnicodeEncodeError:
        return False
    return True


def _is_uid(value) -> bool:
    """A uid as this store makes them (32 hex digits): a damaged one is not salvaged as if it were another attempt."""
    return isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def _time(value, *, future_ok: bool) -> datetime | str:
    """The parsed time, or what is wrong with ``value``."""
    if not isinstance(value, str):
        return f"expected an ISO 8601 time, got {value!r:.60}"
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return f"expected an ISO 8601 time like 2025-01-31T12:00:00+00:00, got {value!r:.60}"
    if at.tzinfo is None:
        return f"{value!r:.60} has no time zone (expected e.g. +00:00 at the end)"
    if not future_ok and at > datetime.now(UTC) + CLOCK_SKEW:
        return f"{value!r:.60} is in the future (this computer's clock says {now_iso()})"
    return at


def _attempt_problem(row, future_ok: bool = False) -> str | None:
    """What is wrong with one attempt row from a file, or None. Fixes up ``at`` to UTC in place."""
    if not isinstance(row, dict):
        return f"expected an object, got {row!r:.60}"
    missing = [f for f in ATTEMPT_FIELDS if f not in row and f != "rating"]
    if missing:
        return f"is missing {', '.join(missing)}"
    checks = (
        ("uid", _text(row["uid"]), "a non-empty text"),
        ("question_id", _text(row["question_id"]), "a non-empty text"),
        ("seed", _whole(row["seed"]), "a whole number"),
        ("score", _number(row["score"], 0.0, 1.0), "a number from 0 to 1"),
        ("hints_used", _whole(row["hints_used"], 0), "a whole number >= 0"),
        ("seconds", _number(row["seconds"], 0.0, 1e9), "a number of seconds >= 0"),
        ("mode", _text(row["mode"]), "a non-empty text"),
        ("rating", row.get("rating") is None or _whole(row["rating"], 1, 4), "null or a whole number from 1 to 4"),
    )
    for field, ok, expected in checks:
        if not ok:
            return f"{field!r} is {row.get(field)!r:.60}, expected {expected}"
    at = _time(row["at"], future_ok=future_ok)
    if isinstance(at, str):
        return f"'at': {at}"
    try:
        json.dumps(row["answer"], allow_nan=False)
    except (TypeError, ValueError) as error:
        return f"'answer' cannot be stored: {error}"
    row["at"] = now_iso(at)
    row.setdefault("rating", None)
    return None


def _state_problem(row, future_ok: bool = False) -> str | None:
    """What is wrong with one review-state row from a file, or None. Fixes up the times to UTC in place."""
    from bpcore.quiz import schedule

    if not isinstance(row, dict):
        return f"expected an object, got {row!r:.60}"
    missing = [f for f in STATE_FIELDS if f not in row]
    if missing:
        return f"is missing {', '.join(missing)}"
    if not _text(row["question_id"]):
        return f"'question_id' is {row['question_id']!r:.60}, expected a non-empty text"
    if not _whole(row["reps"], 1):
        return f"'reps' is {row['reps']!r:.60}, expected a whole number >= 1"
    due, updated = _time(row["due"], future_ok=True), _time(row["updated"], future_ok=future_ok)
    if isinstance(due, str):
        return f"'due': {due}"
    if isinstance(updated, str):
        return f"'updated': {updated}"
    problem = schedule.card_problem(row["card"])
    if problem:
        return f"'card': {problem}"
    if datetime.fromisoformat(row["card"]["due"]) != due:
        return f"'due' is {row['due']!r:.60} but the card says it is due {row['card']['due']!r:.60}"
    row["due"], row["updated"] = now_iso(due), now_iso(updated)
    return None


def _check_stored(conn: sqlite3.Connection) -> None:
    """Read every row the way the store's readers will; _Damaged names the first one that cannot be read.

    SQLite's quick check misses damage inside a row's text (bytes that are not UTF-8, broken JSON): that
    would make every later read fail, so it is looked for here, before anything else uses the file.
    """
    try:
        bad = conn.execute(
            "SELECT id FROM attempts WHERE NOT json_valid(answer) OR typeof(score) NOT IN ('real', 'integer') "
            "OR typeof(seed) != 'integer' LIMIT 1"
        ).fetchone()
        if bad is not None:
            raise ValueError(f"attempt {bad[0]} has broken JSON or a value of the wrong type")
        for row in conn.execute("SELECT uid, question_id, answer, mode, at FROM attempts"):  # decodes every text
            datetime.fromisoformat(row[4])
        for row in conn.execute("SELECT question_id, card, due, updated FROM review_state"):
            if not isinstance(json.loads(row[1]), dict):
                raise ValueError(f"the review state of {row[0]} is not a card")
            datetime.fromisoformat(row[2]), datetime.fromisoformat(row[3])
    except (ValueError, TypeError) as error:  # JSONDecodeError is a ValueError
        raise _Damaged(f"a row cannot be read: {error}") from None
    except sqlite3.DatabaseError as error:
        if _is_damage(error):
            raise _Damaged(str(error)) from None
        raise


# ----------------------------------------------------------------------------- salvage


def _readable_rows(path: Path) -> tuple[list[dict], list[dict], int]:
    """Every attempt and review state that can still be read from a damaged file, and how many could not.

    The file is opened read-only, its text read as bytes and decoded row by row; when a scan meets a
    damaged page, the rows are looked up one id at a time instead. Only rows that pass the import
    checks are kept, so nothing unreadable reaches a fresh store.
    """
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
        conn.text_factory = bytes
        conn.execute("SELECT name FROM sqlite_master").fetchall()
    except _SQL_FAILURE:
        return [], [], 0
    deadline = time.monotonic() + SALVAGE_SECONDS
    lost = 0

    def rows(table: str, columns: tuple[str, ...]) -> dict[int, tuple]:
        found: dict[int, tuple] = {}
        sql = f"SELECT rowid, {', '.join(columns)} FROM {table}"
        try:
            for row in conn.execute(sql + " ORDER BY rowid"):
                found[row[0]] = row[1:]
            return found
        except _SQL_FAILURE:
            pass
        last = max(found, default=0) + 1000  # ids are given in order: damage seldom hides more than that
        for sql_last in (f"SELECT seq FROM sqlite_sequence WHERE name = '{table}'", f"SELECT max(rowid) FROM {table}"):
            try:
                last = max(last, int(conn.execute(sql_last).fetchone()[0] or 0))
                break
            except (*_SQL_FAILURE, TypeError, ValueError):
                continue
        for rowid in range(1, min(int(last), 10_000_000) + 1):
            if time.monotonic() > deadline:
                break
            try:
                row = conn.execute(sql + " WHERE rowid = ?", (rowid,)).fetchone()
            except _SQL_FAILURE:
                continue
            if row is not None:
                found[rowid] = row[1:]
        return found

    def decode(value):
        return value.decode("utf-8") if isinstance(value, bytes) else value

    attempts, states = [], []
    try:
        for values in rows("attempts", ATTEMPT_FIELDS).values():
            try:
                row = dict(zip(ATTEMPT_FIELDS, (decode(v) for v in values), strict=True))
                row["answer"] = json.loads(row["answer"])
            except (UnicodeDecodeError, ValueError, TypeError):
                lost += 1
                continue
            if _attempt_problem(row, future_ok=True) or not _is_uid(row["uid"]):
                lost += 1
            else:
                attempts.append(row)
        for values in rows("review_state", STATE_FIELDS).values():
            try:
                row = dict(zip(STATE_FIELDS, (decode(v) for v in values), strict=True))
                row["card"] = json.loads(row["card"])
            except (UnicodeDecodeError, ValueError, TypeError):
                lost += 1
                continue
            if _state_problem(row, future_ok=True):
                lost += 1
            else:
                states.append(row)
    except _SQL_FAILURE:  # not even the table list: nothing more to read
        pass
    finally:
        conn.close()
    return attempts, states, lost


# ----------------------------------------------------------------------------- the store


def _is_damage(error: sqlite3.DatabaseError) -> bool:
    """Corruption or not-a-database, as opposed to a lock or a permission problem."""
    name = getattr(error, "sqlite_errorname", "")
    text = str(error)
    return (
        name in ("SQLITE_CORRUPT", "SQLITE_NOTADB")
        or "malformed" in text
        or "not a database" in text
        or "Could not decode" in text
    )


def _open_fd(path, flags: int) -> int:
    """``os.open``, on its own so that tests can make it fail the way a permission problem does."""
    return os.open(path, flags)


def _locked(method):
    """Run ``method`` holding the store's lock: the connection is shared by every thread that uses the store."""

    @wraps(method)
    def run(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return run


def _reading(method):
    """A read: holding the lock, in the file now at the path, and damage met here is handled as damage."""

    @wraps(method)
    def run(self, *args, **kwargs):
        with self._lock:
            if self._replaced():
                self._reopen()
            try:
                return method(self, *args, **kwargs)
            except (json.JSONDecodeError, UnicodeDecodeError) as error:  # a row no longer decodes
                raise StoreError(self._recover(f"a row cannot be read: {error}")) from None
            except sqlite3.DatabaseError as error:
                if _is_damage(error):
                    raise StoreError(self._recover(str(error))) from None
                raise StoreError(
                    f"cannot read the progress file {self.path}: {error}. Try again, {FIX_HINT}."
                ) from None

    return run


class Store:
    """The progress database. ``notice`` holds a message for the learner when a damaged file was set aside."""

    def __init__(self, path=None, timeout: float = BUSY_TIMEOUT_SECONDS):
        self.path = Path(path) if path is not None else default_path()
        self.timeout = timeout
        self.notice: str | None = None
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._file_id: tuple[int, int] | None = None
        self._pending_salvage: tuple[list[dict], list[dict]] | None = None
        self._check_place()
        self._start()

    # -- opening ---------------------------------------------------------------------------------
    def _check_place(self) -> None:
        """Refuse, with what to do, a place where no progress file can live (before SQLite tries)."""
        folder = self.path.parent
        for above in (folder, *folder.parents):
            if above.exists() or above.is_symlink():
                if not above.is_dir():
                    raise StoreError(
                        f"{above} is a file, but bpcore keeps your progress in the folder {folder}: "
                        f"move that file away, {FIX_HINT}."
                    )
                break
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(
                f"cannot create the folder {folder} for your progress ({error.strerror}): "
                f"create it yourself or fix its permissions, {FIX_HINT}."
            ) from None
        if self.path.is_symlink() and not self.path.exists():
            raise StoreError(
                f"{self.path} is a symbolic link to {os.readlink(self.path)}, which does not exist (a drive that "
                "is not mounted?): restore what it points to, or remove the link to start a fresh progress file."
            )
        if self.path.is_dir():
            raise StoreError(
                f"{self.path} is a folder, not a progress file: move it away (bpcore then starts a fresh progress "
                f"file), {FIX_HINT}."
            )
        if self.path.exists():
            try:
                os.close(_open_fd(self.path, os.O_RDWR))
            except OSError as error:
                raise StoreError(self._access_message(self.path, error, "the progress file")) from None
        try:
            tempfile.TemporaryFile(dir=folder).close()  # SQLite keeps its -wal and -shm files next to the database
        except OSError as error:
            raise StoreError(self._access_message(folder, error, "the folder")) from None

    def _access_message(self, where: Path, error: OSError, what: str) -> str:
        if error.errno == errno.EROFS:
            return f"{what} {where} is on a read-only file system, so no answer could be saved: {FIX_HINT}."
        if error.errno in (errno.EACCES, errno.EPERM):
            fix = f"chmod u+rw '{where}'" if what == "the progress file" else f"chmod u+rwx '{where}'"
            return (
                f"{what} {where} cannot be read and written by you (permission denied), so no answer could be "
                f"saved: give yourself access ({fix}), {FIX_HINT}."
            )
        return f"cannot use {what} {where} ({error.strerror or error}): {FIX_HINT}."

    def _start(self) -> None:
        try:
            self._conn = self._open()
        except _Damaged as damage:
            self._set_aside(str(damage))
            self._conn = self._open()
            self._apply_salvage()

    def _connect(self) -> sqlite3.Connection:
        # any thread may use the connection; _lock makes them take turns
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        return conn

    def _retry_locked(self, conn: sqlite3.Connection, sql: str):
        """Run ``sql``, retrying while another process holds a lock (``journal_mode`` does not wait by itself)."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return conn.execute(sql).fetchall()
            except sqlite3.OperationalError as error:
                if ("locked" not in str(error) and "busy" not in str(error)) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005 + 0.02 * random.random())

    def _open(self) -> sqlite3.Connection:
        try:
            conn = self._connect()
        except sqlite3.DatabaseError as error:
            raise StoreError(self._open_message(error)) from None
        try:
            check = self._retry_locked(conn, "PRAGMA quick_check")[0][0]
            if check != "ok":
                raise _Damaged(f"integrity check failed: {check}")
            self._recognise(conn)  # read only: another program's file is refused before anything is written
            self._retry_locked(conn, "PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            self._create(conn)
            _check_stored(conn)
            self._file_id = self._identity()
        except sqlite3.DatabaseError as error:
            conn.close()
            if _is_damage(error):
                raise _Damaged(str(error)) from None
            raise StoreError(self._open_message(error)) from None
        except UnicodeDecodeError as error:  # SQLite's own report quotes damaged bytes
            conn.close()
            raise _Damaged(f"it holds text that is not UTF-8 ({error})") from None
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_message(self, error: sqlite3.DatabaseError) -> str:
        text = str(error)
        if "readonly" in text or "read-only" in text:
            return (
                f"the progress file {self.path} is read-only, so no answer could be saved: make it and its folder "
                f"writable (chmod u+w '{self.path}'), {FIX_HINT}."
            )
        if "locked" in text:
            return (
                f"the progress file {self.path} stayed locked by another program for {self.timeout:g} s: "
                "close other bpcore sessions (terminals, notebooks) and try again."
            )
        return f"cannot open the progress file {self.path} ({text}): check that you can read and write it, {FIX_HINT}."

    def _recognise(self, conn: sqlite3.Connection) -> None:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables - _TABLES:
            raise _Damaged(f"it is an SQLite file but not a bpcore progress file (tables: {', '.join(sorted(tables))})")

    def _create(self, conn: sqlite3.Connection) -> None:
        """Create the tables if needed and check the version, in one write transaction.

        The transaction also proves the file can be written: a read-only file is refused here, before a
        learner types an answer that could not be saved.
        """
        self._retry_locked(conn, "BEGIN IMMEDIATE")
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"meta", "attempts", "review_state"} <= tables:
                statement = ""
                for line in _SCHEMA.splitlines(keepends=True):
                    statement += line
                    if sqlite3.complete_statement(statement):
                        conn.execute(statement)
                        statement = ""
            columns = tuple(r[1] for r in conn.execute("PRAGMA table_info(attempts)"))[1:]
            if columns != ATTEMPT_FIELDS:
                raise _Damaged(f"its attempt table has unexpected columns {columns}")
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is not None and not str(row[0]).isdigit():
                raise _Damaged(f"its schema version is {row[0]!r}")
            if row is not None and int(row[0]) > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer bpcore (schema {row[0]}, this one reads {SCHEMA_VERSION}); "
                    f"upgrade bpcore, {FIX_HINT}"
                )
            # a write in every case: SQLite opens a read-only file without complaint and fails at the first write
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            conn.execute("COMMIT")
        except BaseException:
            self._rollback(conn)
            raise

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        try:  # SQLite may have rolled back already (a full disk, an I/O error)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except (sqlite3.Error, UnicodeDecodeError):
            pass

    def _identity(self) -> tuple[int, int]:
        info = os.stat(self.path)
        return info.st_dev, info.st_ino

    def _replaced(self) -> bool:
        """Is the file at our path no longer the one we opened (set aside by another process)?"""
        try:
            return self._identity() != self._file_id
        except OSError:
            return True

    def _reopen(self) -> None:
        old = self._conn
        self._conn = None
        if old is not None:
            old.close()  # SQLite checkpoints only a file that was not moved: the new file's -wal is safe
        self._check_place()
        self._start()
        if self.notice is None:
            self.notice = (
                f"Your progress file {self.path} was set aside by another bpcore session (it found it damaged "
                "and kept it as progress.db.damaged-*); this session now uses the new file."
            )

    def _still_damaged(self) -> bool:
        """Another process may already have set the file aside and started afresh: look again first."""
        try:
            self._open().close()
        except _Damaged:
            return True
        except StoreError:
            return False
        return False

    def _set_aside(self, reason: str, confirmed: bool = False) -> None:
        """Rename the damaged file (``confirmed``: we know the file at the path is the damaged one)."""
        reason = " ".join(reason.split())[:200]  # SQLite's report can run to many lines
        if not self.path.exists() or not (confirmed or self._still_damaged()):
            return
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
        kept = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        counter = 1
        while kept.exists():
            kept = self.path.with_name(f"{self.path.name}.damaged-{stamp}-{counter}")
            counter += 1
        # hold the write lock while renaming, when the file still allows it: a writer that was mid-answer
        # finishes first (and its answer is salvaged below), one that comes after sees the file was replaced
        holder = None
        try:
            holder = sqlite3.connect(self.path, timeout=min(self.timeout, 5.0), isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
        except (sqlite3.Error, UnicodeDecodeError):
            pass
        try:
            os.rename(self.path, kept)
        except FileNotFoundError:  # another process moved it a moment ago
            return
        else:
            for suffix in ("-wal", "-shm", "-journal"):
                side = Path(str(self.path) + suffix)
                if side.exists():
                    os.replace(side, Path(str(kept) + suffix))
        finally:
            if holder is not None:
                holder.close()
        attempts, states, lost = _readable_rows(kept)
        self.notice = (
            f"Your progress file {self.path} could not be read ({reason}). It was kept as {kept} "
            "and a fresh progress file has been started"
        )
        if attempts or states or lost:
            self._pending_salvage = (attempts, states)
            self.notice += (
                f", holding the {len(attempts)} attempts and {len(states)} review states that could still be read"
                + (f" ({lost} rows could not be read)" if lost else "")
            )
        self.notice += ". Nothing was deleted: `bpcore import` restores an export."

    def _recover(self, reason: str) -> str:
        """Damage met by a read: set the file aside, salvage it into a fresh store; the message for the learner."""
        confirmed = not self._replaced()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.notice = None
        self._set_aside(reason, confirmed)
        if self.notice is None:  # another process set it aside first
            self.notice = f"Your progress file {self.path} was damaged ({reason}) and has been set aside."
        self._conn = self._open()
        self._apply_salvage()
        return f"{self.notice} Run the command again (or press the button again) to carry on."

    def _apply_salvage(self) -> None:
        salvage = getattr(self, "_pending_salvage", None)
        if salvage:
            self._pending_salvage = None
            self._transaction(lambda conn: self._merge(conn, *salvage))

    # -- writing ---------------------------------------------------------------------------------
    @_locked
    def _transaction(self, work: Callable[[sqlite3.Connection], object]):
        """Run ``work`` inside BEGIN IMMEDIATE ... COMMIT; any exception (Ctrl-C included) rolls back.

        SQLite's failures become a StoreError that says the write did not happen.
        """
        if self._conn is None:
            raise StoreError(f"the progress file {self.path} is closed: open a new Store")
        self._refuse_if_replaced()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as error:
            raise StoreError(self._not_saved(error)) from None
        self._refuse_if_replaced()  # set aside while we waited for the write lock
        try:
            result = work(self._conn)
            self._conn.execute("COMMIT")
            return result
        except sqlite3.DatabaseError as error:
            self._rollback(self._conn)
            if isinstance(error, sqlite3.IntegrityError):
                raise
            raise StoreError(self._not_saved(error)) from None
        except BaseException:
            self._rollback(self._conn)
            raise

    def _refuse_if_replaced(self) -> None:
        if not self._replaced():
            return
        self._rollback(self._conn)
        self._reopen()
        raise StoreError(
            f"Not saved: your progress file {self.path} was set aside by another bpcore session while this one "
            "had it open (it found it damaged). This session now uses the new file: answer again to save it there."
        )

    def _not_saved(self, error: sqlite3.DatabaseError) -> str:
        text = str(error)
        if "full" in text:
            return (
                f"Not saved: the disk is full ({text}). Free some space on the disk holding {self.path.parent}, "
                "then answer again; everything saved before is intact."
            )
        if "locked" in text or "busy" in text:
            return (
                f"Not saved: the progress file {self.path} stayed locked for {self.timeout:g} s by another program. "
                "Close other bpcore sessions, then answer again."
            )
        if "readonly" in text or "read-only" in text:
            return f"Not saved: the progress file {self.path} is read-only. Make it writable, {FIX_HINT}."
        return f"Not saved: writing to the progress file {self.path} failed ({text}). Check the disk, then try again."

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
        Raises StoreError ("Not saved: ...") when the attempt could not be written.
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

        try:
            return self._transaction(work)
        except sqlite3.IntegrityError as error:
            raise StoreError(f"Not saved: the attempt breaks a rule of the log ({error}).") from None

    # -- reading ---------------------------------------------------------------------------------
    @staticmethod
    def _state(conn, question_id: str) -> dict | None:
        row = conn.execute("SELECT * FROM review_state WHERE question_id = ?", (question_id,)).fetchone()
        return None if row is None else {**dict(row), "card": json.loads(row["card"])}

    @_reading
    def review_state(self, question_id: str) -> dict | None:
        return self._state(self._conn, question_id)

    @_reading
    def review_states(self) -> dict[str, dict]:
        rows = self._conn.execute("SELECT * FROM review_state").fetchall()
        return {r["question_id"]: {**dict(r), "card": json.loads(r["card"])} for r in rows}

    @_reading
    def attempts(self, question_id: str | None = None, mode: str | None = None) -> list[dict]:
        """Attempts, oldest first, as dicts (``answer`` decoded from JSON)."""
        sql, args = "SELECT * FROM attempts WHERE 1 = 1", []
        if question_id is not None:
            sql, args = sql + " AND question_id = ?", [*args, question_id]
        if mode is not None:
            sql, args = sql + " AND mode = ?", [*args, mode]
        rows = self._conn.execute(sql + " ORDER BY id", args).fetchall()
        return [{**dict(r), "answer": json.loads(r["answer"])} for r in rows]

    @_reading
    def count(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]

    @_reading
    def integrity(self) -> str:
        """'ok', or SQLite's description of what is wrong."""
        return self._conn.execute("PRAGMA integrity_check").fetchone()[0]

    # -- export and import -----------------------------------------------------------------------
    def _snapshot(self) -> tuple[list[dict], list[dict], int]:
        """Every attempt and review state, read in one read transaction (a writer cannot slip in between).

        When the file turns out damaged, what can still be read is returned, with the count that could not.
        """
        conn = self._conn
        try:
            conn.execute("BEGIN")
            try:
                attempts = [dict(r) for r in conn.execute("SELECT * FROM attempts ORDER BY id")]
                states = [dict(r) for r in conn.execute("SELECT * FROM review_state ORDER BY question_id")]
            finally:
                self._rollback(conn)
            for a in attempts:
                a.pop("id")
                a["answer"] = json.loads(a["answer"])
            for s in states:
                s["card"] = json.loads(s["card"])
            return attempts, states, 0
        except (ValueError, TypeError, sqlite3.DatabaseError) as error:
            if isinstance(error, sqlite3.DatabaseError) and not _is_damage(error):
                raise StoreError(f"cannot read the progress file {self.path}: {error}. Try again.") from None
            return _readable_rows(self.path)

    @_locked
    def export_json(self, path) -> dict:
        """Write every attempt and review state to ``path`` as JSON; returns the counts.

        From a damaged file, everything that can still be read is written and ``unreadable`` counts the rest.
        The file appears whole or not at all: it is written to ``path.tmp`` first, which never stays behind.
        """
        if self._replaced():
            self._reopen()
        attempts, states, lost = self._snapshot()
        document = {
            "format": EXPORT_FORMAT,
            "version": SCHEMA_VERSION,
            "exported": now_iso(),
            "attempts": attempts,
            "review_state": states,
        }
        path = Path(path)
        if path.is_dir():
            raise StoreError(
                f"cannot export to {path}: it is a folder; give a file name, e.g. {path / 'progress.json'}"
            )
        if not path.parent.is_dir():
            raise StoreError(f"cannot export to {path}: the folder {path.parent} does not exist; create it first")
        tmp = Path(str(path) + ".tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as out:
                out.write(json.dumps(document, indent=1))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)  # a reader never sees half a file
        except OSError as error:
            tmp.unlink(missing_ok=True)
            reason = "the disk is full" if error.errno == errno.ENOSPC else (error.strerror or str(error))
            raise StoreError(f"Export failed: cannot write {path} ({reason}); nothing was written.") from None
        counts = {"attempts": len(attempts), "review_state": len(states)}
        if lost:
            counts["unreadable"] = lost
        return counts

    def _merge(self, conn: sqlite3.Connection, attempts: list[dict], states: list[dict]) -> dict:
        """Add attempts not yet here (by uid) and take each review state that is newer than ours."""
        added = 0
        for a in attempts:
            values = [a[f] if f != "answer" else json.dumps(a[f]) for f in ATTEMPT_FIELDS]
            added += conn.execute(
                f"INSERT INTO attempts ({', '.join(ATTEMPT_FIELDS)}) VALUES ({', '.join('?' * 10)}) "
                "ON CONFLICT (uid) DO NOTHING",
                values,
            ).rowcount
        taken = 0
        for s in states:
            old = self._state(conn, s["question_id"])
            if old is None or datetime.fromisoformat(s["updated"]) > datetime.fromisoformat(old["updated"]):
                conn.execute(
                    "INSERT OR REPLACE INTO review_state VALUES (?, ?, ?, ?, ?)",
                    (s["question_id"], json.dumps(s["card"]), s["due"], s["reps"], s["updated"]),
                )
                taken += 1
        return {"attempts": added, "review_state": taken}

    def import_json(self, path) -> dict:
        """Merge an export into this store: attempts are added once (by uid); a review state is taken
        when it is newer than ours. Every row is checked first, and everything or nothing is imported.
        Returns the counts added."""
        document = _read_export(Path(path))
        try:
            with self._lock:
                if self._replaced():
                    self._reopen()
                return self._transaction(lambda conn: self._merge(conn, document["attempts"], document["review_state"]))
        except sqlite3.IntegrityError as error:
            raise StoreError(f"{path}: an attempt breaks a rule of the log ({error}); nothing was imported") from None
        except StoreError as error:
            raise StoreError(f"{error} Nothing was imported from {path}.") from None

    @_locked
    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _read_export(path: Path) -> dict:
    """The parsed export with every row checked, or a StoreError that names the first thing wrong with it."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise StoreError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise StoreError(f"{path} is not a UTF-8 text file ({error}); nothing was imported") from None
    except (json.JSONDecodeError, RecursionError) as error:
        raise StoreError(f"{path} is not JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
        raise StoreError(f'{path} is not a bpcore progress export (expected "format": "{EXPORT_FORMAT}")')
    version = document.get("version", 0)
    if not _whole(version, 0):
        raise StoreError(f"{path}: expected a whole number under 'version', got {version!r:.60}")
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path} was exported by a newer bpcore (version {version}); upgrade bpcore to import it")
    seen: set[str] = set()
    for name, check in (("attempts", _attempt_problem), ("review_state", _state_problem)):
        rows = document.get(name)
        if not isinstance(rows, list):
            raise StoreError(f"{path}: expected a list under {name!r}, got {type(rows).__name__}")
        for i, row in enumerate(rows):
            problem = check(row)
            if problem is None and name == "review_state":
                problem = f"a second review state for {row['question_id']!r}" if row["question_id"] in seen else None
                seen.add(row["question_id"])
            if problem:
                raise StoreError(f"{path}: {name}[{i}] {problem}; nothing was imported (fix or remove that row)")
    return document
