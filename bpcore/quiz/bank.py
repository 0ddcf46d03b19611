"""Question banks: one TOML file per topic, read with stdlib ``tomllib`` and validated on load.

A bank file looks like this (every field is described in ``SCHEMA`` below)::

    topic = "chain_rule"                 # the file's topic; its questions inherit it
    title = "The chain rule"

    [[question]]
    id = "chain-rule-composite"          # stable and unique across all banks: progress is keyed by it
    level = "basic"                      # basic | intermediate | advanced
    kind = "single"                      # single multi numeric matrix order code bughunt flashcard
    prompt = "If $L = f(u)$ and ..."     # Markdown with LaTeX; a generator fills {{name}} ({{b|row}}: a row vector)
    choices = ["...", "..."]             # the answer spec: which fields depends on the kind
    answer = "b"                         # the file's order: choices are shuffled on every attempt
    hints = ["a nudge", "a bigger nudge"]        # tiered: shown one at a time
    explanation = "Why the answer is right."
    notebook = "notebooks/00_start_here.ipynb#1.-The-chain-rule,-by-hand"
    tags = ["chain rule"]

A numeric answer written as an integer (``answer = 20``) is a count and is graded exactly; write
``20.0`` for a tolerance. Texts of a choice question never name an option by its letter ("see (b)"):
letters change with every shuffle, so ``bpcore validate`` refuses them.

Every problem found is reported at once, each naming the file, the question id and the field.
Banks are looked for in ``bpcore/quiz/banks`` (inside an installed wheel) and otherwise in the
repository's ``quizzes/`` folder.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from bpcore.quiz import bughunts, functions, generators
from bpcore.quiz.diagnose import DEFAULT_DIGITS
from bpcore.quiz.parse import ParseError, parse_array, parse_number

LEVELS = ("basic", "intermediate", "advanced")
KINDS = ("single", "multi", "numeric", "matrix", "order", "code", "bughunt", "flashcard")
PACKAGED_BANKS = Path(__file__).resolve().parent / "banks"
REPO_BANKS = Path(__file__).resolve().parents[2] / "quizzes"
_ID = re.compile(r"[a-z0-9][a-z0-9-]*\Z")
_POINTER = re.compile(r"notebooks/[\w.-]+\.ipynb(#.+)?\Z")
SIGNIFICANT_DIGITS = re.compile(r"(\d+)\s+significant\s+digits", re.IGNORECASE)  # what a prompt asks for
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*(?:\|\s*(row|col)\s*)?\}\}")  # {{b1}} or {{b1|row}}


@dataclass
class Question:
    """One question, as validated. ``spec`` holds the fields of its kind (choices, answer, items, ...)."""

    id: str
    topic: str
    level: str
    kind: str
    prompt: str
    hints: list[str]
    explanation: str
    notebook: str
    tags: list[str]
    spec: dict = field(default_factory=dict)
    generator: str | None = None
    fast_seconds: float | None = None
    source: str = ""

    @property
    def integer(self) -> bool:
        """A numeric answer that is a whole number by nature (a size, a count): graded exactly.

        Written as an integer in the bank (``answer = 73856``, not ``73856.0``), or made by a generator
        registered with ``integer=True``. An author who wants a tolerance writes the answer as a float.
        """
        if self.kind != "numeric":
            return False
        if self.generator:
            return generators.GENERATORS[self.generator].integer
        answer = self.spec.get("answer")
        return isinstance(answer, int) and not isinstance(answer, bool)

    @property
    def digits(self) -> int:
        """The significant digits a numeric or matrix answer is graded to (bpcore.quiz.diagnose states the rule).

        Said once: by the prompt ("Give 3 significant digits", "(4 significant digits.)"), or by the ``digits``
        field where the prompt does not say it; 3 when neither does. The schema refuses a prompt and a field
        that disagree. An integer answer is graded exactly, whatever this says.
        """
        return stated_digits(self.prompt, self.spec)


def stated_digits(prompt: str, spec: dict) -> int:
    """The significant digits a prompt or its ``digits`` field asks for; 3 (DEFAULT_DIGITS) when neither says."""
    if "digits" in spec:
        return int(spec["digits"])
    found = SIGNIFICANT_DIGITS.search(prompt)
    return int(found.group(1)) if found else DEFAULT_DIGITS


@dataclass
class Issue:
    """One thing wrong with a bank: where, and what was expected against what arrived."""

    file: str
    question: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = [self.file]
        if self.question:
            where.append(f"question {self.question!r}")
        if self.field:
            where.append(f"field {self.field!r}")
        return ": ".join([*where, self.message])


class BankError(ValueError):
    """Raised when a bank does not load; ``problems`` lists every issue found."""

    def __init__(self, problems: list[Issue]):
        self.problems = problems
        count = f"{len(problems)} problem{'s' * (len(problems) != 1)} in the question banks"
        super().__init__(count + ":\n" + "\n".join(f"  {p}" for p in problems))


# ----------------------------------------------------------------------------- field checks
# Each returns None when the value is fine, or a message saying what was expected and what arrived.


def _got(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) < 60 else text[:57] + '...'}"


def _text(value, spec) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"expected non-empty text, got {_got(value)}"
    return None


MAX_OPTIONS = 26  # choices, fixes and order items are labelled a to z


def _texts(minimum: int, maximum: int | None = None, same_length_as: str | None = None):
    def check(value, spec) -> str | None:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            return f"expected a list of non-empty strings, got {_got(value)}"
        if len(value) < minimum:
            return f"expected at least {minimum} entries, got {len(value)}"
        if maximum is not None and len(value) > maximum:
            return f"expected at most {maximum} entries (they are labelled a to z), got {len(value)}"
        other = spec.get(same_length_as) if same_length_as else None
        if isinstance(other, list) and len(value) != len(other):
            return f"expected one entry per entry of {same_length_as!r} ({len(other)}), got {len(value)}"
        return None

    return check


def _one_of(options):
    def check(value, spec) -> str | None:
        return None if value in options else f"expected one of {', '.join(options)}, got {_got(value)}"

    return check


def _letter_of(list_field: str):
    def check(value, spec) -> str | None:
        count = len(spec.get(list_field) or [])
        letters = "abcdefghijklmnopqrstuvwxyz"[:count]
        if not isinstance(value, str) or len(value) != 1 or value not in letters:
            last = letters[-1:] or "?"
            return f"expected one letter from a to {last} (one per entry of {list_field!r}), got {_got(value)}"
        return None

    return check


def _letters_of(list_field: str):
    def check(value, spec) -> str | None:
        single = _letter_of(list_field)
        if not isinstance(value, list) or not value:
            return f"expected a non-empty list of letters, got {_got(value)}"
        if len(set(value)) != len(value):
            return f"expected each letter once, got {value}"
        return next((single(v, spec) for v in value if single(v, spec)), None)

    return check


def _number(value, spec) -> str | None:
    try:
        parse_number(value)
    except ParseError as error:
        return str(error)
    return None


def _tolerance(value, spec) -> str | None:
    return (
        "is no longer read: numbers are graded to significant digits (bpcore.quiz.diagnose); say how many in "
        'the prompt ("3 significant digits") or with digits = N, and an integer answer is graded exactly'
    )


def _array(value, spec) -> str | None:
    try:
        parse_array(value if isinstance(value, str) else json.dumps(value))
    except ParseError as error:
        return str(error)
    return None


def _mistakes(value, spec) -> str | None:
    if not isinstance(value, list):
        return f"expected a list of tables {{name, answer, why}}, got {_got(value)}"
    for i, entry in enumerate(value):
        if (
            not isinstance(entry, dict)
            or set(entry) - {"name", "answer", "why"}
            or not {"name", "answer"} <= set(entry)
        ):
            return f"entry {i}: expected a table with name, answer and optionally why, got {_got(entry)}"
        if not isinstance(entry["name"], str) or not entry["name"].strip():
            return f"entry {i}: expected its name as non-empty text, got {_got(entry['name'])}"
        if "why" in entry and (not isinstance(entry["why"], str) or not entry["why"].strip()):
            return f"entry {i} ({entry['name']!r}): expected why as non-empty text, got {_got(entry['why'])}"
        read = _array if spec.get("kind") == "matrix" else _number
        if message := read(entry["answer"], spec):
            return f"entry {i} ({entry['name']!r}): its answer cannot be read: {message}"
    return None


def _registered(registry: dict, what: str):
    def check(value, spec) -> str | None:
        if value in registry:
            return None
        near = difflib.get_close_matches(str(value), registry, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        return f"expected a known {what}: {', '.join(sorted(registry))}; got {_got(value)}{hint}"

    return check


def _pointer(value, spec) -> str | None:
    if not isinstance(value, str) or not _POINTER.match(value):
        return f"expected 'notebooks/<name>.ipynb' or 'notebooks/<name>.ipynb#<heading>', got {_got(value)}"
    return None


def _positive(value, spec) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return f"expected a number of seconds > 0, got {_got(value)}"
    return None


# ----------------------------------------------------------------------------- the schema

COMMON_REQUIRED = {
    "id": _text,
    "level": _one_of(LEVELS),
    "kind": _one_of(KINDS),
    "prompt": _text,
    "hints": _texts(1),
    "explanation": _text,
    "notebook": _pointer,
    "tags": _texts(0),
}
COMMON_OPTIONAL = {"topic": _text, "fast_seconds": _positive}


def _digits(value, spec) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 15:
        return f"expected a whole number of significant digits from 1 to 15, got {_got(value)}"
    return None


# digits: how many significant digits an answer is graded to, when the prompt does not say ("3 significant
# digits"); rtol/atol are refused with a message that says so (the grading rule is in bpcore.quiz.diagnose)
_ANSWER_CHECK = {"atol": _tolerance, "rtol": _tolerance, "digits": _digits, "mistakes": _mistakes}
_GENERATED = {"generator": _registered(generators.GENERATORS, "generator")}

# kind -> (required fields, optional fields). numeric and matrix need an answer unless a generator makes it.
SCHEMA = {
    "single": (
        {"choices": _texts(2, MAX_OPTIONS), "answer": _letter_of("choices")},
        {"why": _texts(2, same_length_as="choices")},
    ),
    "multi": (
        {"choices": _texts(2, MAX_OPTIONS), "answers": _letters_of("choices")},
        {"why": _texts(2, same_length_as="choices")},
    ),
    "numeric": ({}, {"answer": _number, **_ANSWER_CHECK, **_GENERATED}),
    "matrix": ({}, {"answer": _array, **_ANSWER_CHECK, **_GENERATED}),
    "order": ({"items": _texts(3, MAX_OPTIONS)}, {}),
    "code": ({"reference": _registered(functions.REFERENCES, "code reference")}, {}),
    "bughunt": (
        {
            "specimen": _registered(bughunts.SPECIMENS, "bug-hunt specimen"),
            "fixes": _texts(2, MAX_OPTIONS),
            "fix": _letter_of("fixes"),
        },
        {},
    ),
    "flashcard": ({"answer": _text}, {}),
}


def _check_fields(raw: dict, topic: str, where) -> list[Issue]:
    """All problems of one question table. ``where(field, message)`` makes an Issue."""
    problems = []
    kind = raw.get("kind")
    required, optional = dict(COMMON_REQUIRED), dict(COMMON_OPTIONAL)
    if kind in SCHEMA:
        required.update(SCHEMA[kind][0])
        optional.update(SCHEMA[kind][1])
    for name, check in required.items():
        if name not in raw:
            problems.append(where(name, "missing (required)"))
        elif message := check(raw[name], raw):
            problems.append(where(name, message))
    for name, check in optional.items():
        if name in raw and (message := check(raw[name], raw)):
            problems.append(where(name, message))
    for name in raw.keys() - required.keys() - optional.keys():
        near = difflib.get_close_matches(name, [*required, *optional], n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        problems.append(where(name, f"unknown field for a {kind} question{hint}"))
    if kind in ("numeric", "matrix"):
        said = {
            int(n)
            for n in SIGNIFICANT_DIGITS.findall(raw.get("prompt", "") if isinstance(raw.get("prompt"), str) else "")
        }
        if len(said) > 1:
            problems.append(where("prompt", f"asks for {sorted(said)} significant digits: expected one count"))
        elif said and "digits" in raw and said != {raw["digits"]}:
            problems.append(
                where("digits", f"is {raw['digits']!r} but the prompt asks for {said.pop()} significant digits")
            )
        if ("answer" in raw) == ("generator" in raw):
            problems.append(where("answer", "give either an answer or a generator (exactly one)"))
        name = raw.get("generator")
        if name in generators.GENERATORS and generators.GENERATORS[name].kind != kind:
            problems.append(
                where("generator", f"{name!r} makes {generators.GENERATORS[name].kind} answers, not {kind}")
            )
    if "topic" in raw and raw["topic"] != topic:
        problems.append(
            where("topic", f"expected {topic!r} (the file's topic: one file per topic), got {raw['topic']!r}")
        )
    if "generator" not in raw and isinstance(raw.get("prompt"), str) and PLACEHOLDER.search(raw["prompt"]):
        problems.append(where("prompt", "has {{...}} placeholders but the question has no generator to fill them"))
    if kind == "order" and isinstance(raw.get("items"), list) and len(set(raw["items"])) != len(raw["items"]):
        problems.append(where("items", "expected distinct items: two are identical"))
    return problems


def _question(raw: dict, topic: str, source: str) -> Question:
    spec_fields = set(SCHEMA[raw["kind"]][0]) | set(SCHEMA[raw["kind"]][1])
    spec = {k: v for k, v in raw.items() if k in spec_fields and k != "generator"}
    return Question(
        id=raw["id"],
        topic=topic,
        level=raw["level"],
        kind=raw["kind"],
        prompt=raw["prompt"],
        hints=list(raw["hints"]),
        explanation=raw["explanation"],
        notebook=raw["notebook"],
        tags=list(raw["tags"]),
        spec=spec,
        generator=raw.get("generator"),
        fast_seconds=raw.get("fast_seconds"),
        source=source,
    )


def _not_utf8(path: Path, error: UnicodeDecodeError) -> str:
    data = path.read_bytes()
    line = data[: error.start].count(b"\n") + 1
    return (
        f"not UTF-8 text: byte {data[error.start : error.start + 1]!r} at line {line} "
        "(save the file as UTF-8; TOML banks are UTF-8 only)"
    )


def _question_at(path: Path, position: int) -> str | None:
    """The id of the [[question]] whose text holds byte ``position`` of the file, if one can be read."""
    text = path.read_bytes()[:position].decode("utf-8", errors="replace")
    start = text.rfind("[[question]]")
    if start < 0:
        return None
    ids = re.findall(r'^id\s*=\s*["\']([^"\']+)["\']', text[start:], re.MULTILINE)
    after = path.read_bytes()[position:].decode("utf-8", errors="replace")
    ids = ids or re.findall(r'^id\s*=\s*["\']([^"\']+)["\']', after.split("[[question]]")[0], re.MULTILINE)
    return ids[0] if ids else None


def load_bank(path) -> tuple[str, str, list[Question]]:
    """Read and validate one bank file. Returns (topic, title, questions); raises BankError."""
    path = Path(path)
    name = path.name
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise BankError([Issue(name, None, None, f"not valid TOML: {error}")]) from None
    except UnicodeDecodeError as error:  # tomllib reads UTF-8 only
        raise BankError([Issue(name, _question_at(path, error.start), None, _not_utf8(path, error))]) from None
    except OSError as error:
        raise BankError([Issue(name, None, None, f"cannot be read: {error}")]) from None
    problems = []
    topic = data.get("topic")
    if not isinstance(topic, str) or not _ID.match(topic.replace("_", "-")):
        problems.append(
            Issue(name, None, "topic", f"expected a top-level topic name such as 'chain_rule', got {topic!r}")
        )
        topic = path.stem
    title = data.get("title", topic.replace("_", " "))
    for key in data.keys() - {"topic", "title", "question"}:
        problems.append(Issue(name, None, key, "unknown top-level key (expected topic, title and [[question]] tables)"))
    tables = data.get("question", [])
    if not isinstance(tables, list) or not tables:
        problems.append(Issue(name, None, "question", "expected one or more [[question]] tables"))
        tables = []
    questions, seen = [], set()
    for index, raw in enumerate(tables, start=1):
        if not isinstance(raw, dict):
            problems.append(Issue(name, f"#{index}", None, f"expected a [[question]] table, got {_got(raw)}"))
            continue
        qid = raw.get("id") if isinstance(raw.get("id"), str) else None
        label = qid or f"#{index} (no id)"

        def where(field_name, message, label=label):
            return Issue(name, label, field_name, message)

        found = _check_fields(raw, topic, where)
        if qid and not _ID.match(qid):
            found.append(where("id", f"expected lowercase letters, digits and '-', got {qid!r}"))
        if qid in seen:
            found.append(where("id", "used twice in this file"))
        seen.add(qid)
        problems.extend(found)
        if not found:
            questions.append(_question(raw, topic, str(path)))
    if problems:
        raise BankError(problems)
    return topic, title, questions


# ----------------------------------------------------------------------------- all banks


@dataclass
class Bank:
    """Every question of every bank file, in file order, with lookup by id."""

    questions: list[Question]
    titles: dict[str, str]  # topic -> human title, in file order
    directory: Path

    def __post_init__(self):
        self.by_id = {q.id: q for q in self.questions}

    @property
    def topics(self) -> list[str]:
        return list(self.titles)

    def get(self, question_id: str) -> Question:
        if question_id not in self.by_id:
            near = difflib.get_close_matches(question_id, self.by_id, n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else f"; run `bpcore stats` or see {self.directory}"
            raise KeyError(f"no question with id {question_id!r}{hint}")
        return self.by_id[question_id]

    def select(self, topic: str | None = None, level: str | None = None, kinds=None) -> list[Question]:
        """Questions filtered by topic, level and kind (None means any)."""
        if topic is not None and topic not in self.titles:
            raise ValueError(f"unknown topic {topic!r}; the banks have: {', '.join(self.topics)}")
        if level is not None and level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
        return [
            q
            for q in self.questions
            if (topic is None or q.topic == topic)
            and (level is None or q.level == level)
            and (kinds is None or q.kind in kinds)
        ]


def default_bank_dir() -> Path:
    """``bpcore/quiz/banks`` when installed from a wheel, else the repository's ``quizzes/``."""
    for candidate in (PACKAGED_BANKS, REPO_BANKS):
        if candidate.is_dir():
            return candidate
    raise BankError([Issue(str(REPO_BANKS), None, None, f"no question banks found (also looked in {PACKAGED_BANKS})")])


_cache: dict = {}


def load_banks(directory=None) -> Bank:
    """Load every ``*.toml`` bank in ``directory`` (default: :func:`default_bank_dir`).

    All files are checked before anything is raised, so one BankError lists every problem,
    including ids used in two files. Results are cached until a file changes.
    """
    directory = Path(directory) if directory is not None else default_bank_dir()
    files = sorted(directory.glob("*.toml"))
    stamp = (str(directory), tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files))
    if stamp in _cache:
        return _cache[stamp]
    if not files:
        raise BankError([Issue(str(directory), None, None, "no *.toml question banks in this folder")])
    problems, questions, titles, where_defined = [], [], {}, {}
    for path in files:
        try:
            topic, title, found = load_bank(path)
        except BankError as error:
            problems.extend(error.problems)
            continue
        if topic in titles:
            problems.append(Issue(path.name, None, "topic", f"topic {topic!r} is also used by another file"))
        titles[topic] = title
        for q in found:
            if q.id in where_defined:
                problems.append(Issue(path.name, q.id, "id", f"id already used in {where_defined[q.id]}"))
            where_defined[q.id] = path.name
        questions.extend(found)
    if problems:
        raise BankError(problems)
    _cache.clear()
    _cache[stamp] = bank = Bank(questions, titles, directory)
    return bank


# ----------------------------------------------------------------------------- notebook pointers


def slug(text: str) -> str:
    """Headings and fragments compared loosely: '1. The chain rule, by hand' ~ '1.-The-chain-rule,-by-hand'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def notebook_headings(path: Path) -> list[str]:
    """The markdown headings (without the #s) of a notebook file."""
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    headings = []
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            source = "".join(cell.get("source", []))
            headings += [line.lstrip("#").strip() for line in source.splitlines() if line.startswith("#")]
    return headings


def resolve_pointer(pointer: str, root: Path) -> str | None:
    """None if ``root/pointer`` names an existing notebook (and heading); otherwise what is wrong."""
    path_part, _, fragment = pointer.partition("#")
    path = root / path_part
    if not path.is_file():
        return f"notebook {path_part} does not exist (looked in {root})"
    if fragment:
        headings = notebook_headings(path)
        if slug(fragment) not in {slug(h) for h in headings}:
            near = difflib.get_close_matches(fragment, headings, n=1)
            hint = f" (closest: {near[0]!r})" if near else ""
            return f"{path_part} has no heading matching #{fragment}{hint}"
    return None
