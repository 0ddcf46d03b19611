"""``bpcore validate``: the authoring check that every bank is sound, not just loadable.

For every question it grades the answer key and expects full marks, so a key that its own checker
rejects cannot ship. Beyond that, by kind:

* generated questions: for seeds 0-49 and a fresh random sample of 50 more (drawn from ``--seed-sample``,
  itself random unless given, and reported so a failure can be replayed) the generator runs, gives the
  same problem twice, its key agrees with the generator's independent check (finite differences or
  autodiff), every ``{{name}}`` in
  the prompt is filled, and every listed mistake is graded wrong *and* diagnosed as itself;
* static numeric and matrix questions: each listed mistake is diagnosed as itself;
* code questions: the reference's correct solution passes and its known-wrong one fails;
* bug hunts: the buggy and fixed functions differ in one line, the bank's fix is that line, the fixed
  function matches the engine's gradients and the buggy one does not, and every listed fix, typed out
  and run as a learner's would be, is accepted if it is the key and rejected if not;
* every notebook pointer names an existing notebook and heading.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bpcore.quiz import bughunts, fixrun, kinds, render
from bpcore.quiz.bank import PLACEHOLDER, BankError, Question, load_banks, resolve_pointer
from bpcore.quiz.generators import GENERATORS
from bpcore.quiz.instance import LETTERS, Instance, make_instance
from bpcore.quiz.parse import parse_array

# code and maths are not prose: `f(a)` and $\sigma'(z)$ do not refer to an option (a) or (z)
_NOT_PROSE = re.compile(r"```.*?```|`[^`]*`|\$\$.+?\$\$|\$[^$]+\$", re.DOTALL)


@dataclass
class Report:
    """What ``bpcore validate`` found. Truthy when there are no errors."""

    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    questions: int = 0
    seconds: float = 0.0
    seed_sample: int | None = None  # what drew the random seeds: ``bpcore validate --seed-sample N`` replays them
    sampled: list[int] = field(default_factory=list)  # the random seeds each generated question was checked on

    def __bool__(self) -> bool:
        return not self.errors

    def __str__(self) -> str:
        lines = [*(f"note: {n}" for n in self.notes), *(f"error: {e}" for e in self.errors)]
        verdict = "ok" if self else f"{len(self.errors)} error{'s' * (len(self.errors) != 1)}"
        if self.seed_sample is not None:
            lines.append(
                f"generated questions: fixed seeds and {len(self.sampled)} random ones drawn with --seed-sample "
                f"{self.seed_sample}: {', '.join(map(str, self.sampled))}"
            )
        lines.append(f"validate: {self.questions} questions checked in {self.seconds:.1f} s: {verdict}")
        return "\n".join(lines)


def _as_text(value) -> str | dict:
    """An answer written the way a learner would type it (4 significant digits): the key must survive it."""
    if isinstance(value, dict):
        return {k: render.array_text(v) for k, v in value.items()}
    return render.array_text(value)


def _grade(instance: Instance, answer) -> kinds.Result:
    return kinds.check(instance, answer)


def _check_mistakes(q: Question, instance: Instance, where: str) -> list[str]:
    errors = []
    if instance.steps:
        right = _as_text(instance.key)
        for step, mistakes in instance.mistakes.items():
            for m in mistakes:
                result = _grade(instance, {**right, step: _as_text(m.value)})
                name = result.diagnosis.name if result.diagnosis else None
                if result.first_wrong_step != step or name != m.name:
                    errors.append(f"{where}: step {step}: mistake {m.name!r} was diagnosed as {name!r}")
        return errors
    for m in instance.mistakes:
        result = _grade(instance, _as_text(m.value))
        name = result.diagnosis.name if result.diagnosis else None
        if result.score != 0 or name != m.name:
            errors.append(f"{where}: mistake {m.name!r} scored {result.score} and was diagnosed as {name!r}")
    return errors


def carried(instance: Instance, step: str, value) -> dict:
    """Answers of a learner who gives ``value`` at ``step`` and then works every later step out correctly from it.

    Each step is worked from the earlier ones as written down (4 significant digits), as a learner does:
    from unrounded numbers, a later step where terms cancel could differ from what the written ones imply.
    """
    answers = {name: np.asarray(v, dtype=np.float64) for name, v in instance.key.items()}
    answers[step] = _as_written(value)
    changed = {step}
    for name in instance.steps:
        if instance.upstream.get(name) in changed:
            answers[name] = _as_written(instance.follow(instance.values, answers)[name])
            changed.add(name)
    return answers


def _as_written(value) -> np.ndarray:
    return np.asarray(parse_array(render.array_text(value)), dtype=np.float64)


def check_follow_through(instance: Instance, where: str) -> list[str]:
    """The follow-through map agrees with the key on the key, and credits a slip carried on consistently."""
    errors = []
    implied = instance.follow(instance.values, instance.key)
    for name, value in implied.items():
        if not _close(value, instance.key[name]):
            errors.append(f"{where}: follow-through from the key's own steps gives a different {name}")
    for step, mistakes in instance.mistakes.items():
        for m in mistakes:
            answers = carried(instance, step, m.value)
            result = _grade(instance, _as_text(answers))
            later = [n for n in instance.steps if n != step and not _close(answers[n], instance.key[n])]
            if result.first_wrong_step != step or any(result.step_scores[n] != 1 for n in later):
                errors.append(
                    f"{where}: step {step}: mistake {m.name!r} carried on consistently was not given follow-through "
                    f"credit (step scores {result.step_scores})"
                )
    return errors


def _close(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    # atol: central differences (eps 1e-6) carry about 1e-9 of rounding (norm-bn-backward seed 1427434686
    # drew an entry of 1.08e-5 that its check put 1.2e-9 away)
    return np.shape(a) == np.shape(b) and bool(np.allclose(a, b, rtol=1e-6, atol=1e-8))


def sample_seeds(seed_sample: int, count: int) -> list[int]:
    """``count`` seeds drawn from ``seed_sample``: the same number always gives the same seeds."""
    return [int(s) for s in np.random.default_rng(seed_sample).integers(0, 2**31, count)]


def check_generated(q: Question, seeds) -> list[str]:
    """``seeds``: how many from 0 (an int), or the seeds themselves."""
    generator, errors = GENERATORS[q.generator], []
    seeds = range(seeds) if isinstance(seeds, int) else list(seeds)
    for seed in seeds:
        where = f"{q.id}: seed {seed}"
        try:
            instance = make_instance(q, seed)
            again = make_instance(q, seed)
            independent = generator.check(instance.values)
        except Exception as error:  # a generator that crashes is exactly what this check is for
            errors.append(f"{where}: generator {q.generator!r} raised {type(error).__name__}: {error}")
            continue
        if not _close(instance.key, again.key):
            errors.append(f"{where}: not reproducible: the same seed gave a different key")
        if not _close(instance.key, independent):
            errors.append(f"{where}: the key disagrees with the independent check of {q.generator!r}")
        if seed == seeds[0]:
            missing = {m.group(1) for m in PLACEHOLDER.finditer(q.prompt)} - instance.values.keys()
            if missing:
                errors.append(f"{q.id}: prompt placeholders {sorted(missing)} are not filled by {q.generator!r}")
        if not _grade(instance, _as_text(instance.key)).correct:
            errors.append(f"{where}: the key, typed to 4 significant digits, is not graded correct")
        errors += _check_mistakes(q, instance, where)
        if generator.follow is not None:
            errors += check_follow_through(instance, where)
        if len(errors) > 5:
            break  # one broken generator should not bury the report
    return errors


def check_static(q: Question, typed_fixes: list | None = None) -> list[str]:
    """Every non-generated question: the key gets full marks, plus the checks of its kind.

    ``typed_fixes``: a bug hunt's listed fixes, already judged as typed lines (see :func:`check_specimen`).
    """
    instance, errors = make_instance(q, 0), []
    key = instance.key
    if q.kind in ("single", "multi", "bughunt"):
        errors += check_shuffled(q)
    if q.kind == "single":
        answer = instance.letter(key)
    elif q.kind == "multi":
        answer = [instance.letter(i) for i in key]
    elif q.kind in ("numeric", "matrix"):
        answer = _as_text(key)
        errors += _check_mistakes(q, instance, q.id)
    elif q.kind == "order":
        answer = [LETTERS[instance.display.index(i)] for i in key]
    elif q.kind == "code":
        answer = key.solution
        if _grade(instance, key.wrong).score >= 1:
            errors.append(f"{q.id}: the known-wrong solution of {key.name!r} passes: the checker cannot fail")
    elif q.kind == "bughunt":
        answer = {"line": key[0], "fix": instance.letter(key[1])}
        errors += check_specimen(q, typed_fixes)
    else:
        return errors
    if not _grade(instance, answer).correct:
        errors.append(f"{q.id}: the answer key is not graded correct by its own checker")
    return errors


def _letter_reference(letters: str) -> re.Pattern:
    """ "(b)", "option b", "choice (c)" for the option letters in use: they name a position, which shuffling changes."""
    letter = f"[{letters}]"
    return re.compile(
        rf"(?<![\w\\'])\({letter}\)(?![\w(])|\b(?:options?|choices?|fix(?:es)?|answers?)\s+\(?{letter}\b\)?(?![\w'])",
        re.IGNORECASE,
    )


def letter_references(q: Question) -> list[str]:
    """Texts of a shuffled question that point at an option by its letter, which changes from attempt to attempt."""
    spec = q.spec
    options = spec.get("choices") or spec.get("fixes") or []
    pattern = _letter_reference(LETTERS[: len(options)])
    texts = {"prompt": [q.prompt], "hints": q.hints, "explanation": [q.explanation]}
    texts.update({name: spec[name] for name in ("choices", "why", "fixes") if name in spec})
    found = []
    for name, values in texts.items():
        for text in values:
            for match in pattern.finditer(_NOT_PROSE.sub(" ", text)):
                found.append(
                    f"{q.id}: field {name!r} refers to an option by its letter ({match.group(0)!r}), "
                    "but options are shuffled on every attempt: name the option's content instead"
                )
    return found


def check_shuffled(q: Question, seeds: int = 8) -> list[str]:
    """A shuffled question: no text refers to a letter, and the key's shown letter is right whatever the order."""
    errors = letter_references(q)
    for seed in range(seeds):
        instance = make_instance(q, seed)
        if sorted(instance.display) != list(range(len(instance.display))):
            errors.append(f"{q.id}: seed {seed}: the shown order {instance.display} is not a permutation")
            continue
        if q.kind == "single":
            answer = instance.letter(instance.key)
        elif q.kind == "multi":
            answer = [instance.letter(i) for i in instance.key]
        else:
            answer = {"line": instance.key[0], "fix": instance.letter(instance.key[1])}
        if not _grade(instance, answer).correct:
            errors.append(f"{q.id}: seed {seed}: the key's shown letter is not graded correct")
    return errors


def check_specimen(q: Question, typed_fixes: list | None = None) -> list[str]:
    """The bug hunt's specimen is sound, and its listed fixes typed out are judged as the bank says.

    ``typed_fixes``: the verdicts of :func:`~bpcore.quiz.fixrun.judge` on the listed fixes, if already known
    (``validate`` judges every bug hunt's in one child process).
    """
    specimen, errors = bughunts.SPECIMENS[q.spec["specimen"]], []
    if len(specimen.changed) != 1:
        return [
            f"{q.id}: {specimen.name}: buggy and fixed versions should differ in one line, not {len(specimen.changed)}"
        ]
    chosen = q.spec["fixes"][LETTERS.index(q.spec["fix"])]
    if bughunts.normalise(chosen) != bughunts.normalise(specimen.fixed_line):
        errors.append(f"{q.id}: fix ({q.spec['fix']}) {chosen!r} is not the fixed line {specimen.fixed_line!r}")
    fixes, key = q.spec["fixes"], LETTERS.index(q.spec["fix"])
    if typed_fixes is None:
        typed_fixes = fixrun.judge(specimen.name, fixes)
    for index, verdict in enumerate(typed_fixes):  # typed out, each is run as a learner's would be
        if index == key and not verdict.ok:
            errors.append(f"{q.id}: the fix ({q.spec['fix']}) typed out is not accepted: {verdict.message}")
        elif index != key and verdict.ok:
            errors.append(
                f"{q.id}: fix ({LETTERS[index]}) {fixes[index]!r} also makes the pass agree with the engine, "
                "but it is marked wrong"
            )
    for seed in range(5):
        values = specimen.inputs(np.random.default_rng(seed))
        if not specimen.agrees(specimen.fixed, values):
            errors.append(f"{q.id}: seed {seed}: the fixed {specimen.name} disagrees with the engine")
        if specimen.agrees(specimen.buggy, values):
            errors.append(f"{q.id}: seed {seed}: the buggy {specimen.name} agrees with the engine (no bug?)")
    return errors


def _key_is_longest(q: Question) -> bool:
    """The right choice is strictly the longest: a tell that a blind guesser can use whatever the order."""
    choices, key = q.spec["choices"], LETTERS.index(q.spec["answer"])
    return all(len(choices[key]) > len(c) for i, c in enumerate(choices) if i != key)


def pointer_root(directory: Path) -> Path | None:
    """Where notebook pointers are resolved: the repository holding the banks, or the current folder."""
    for candidate in (directory.parent, Path.cwd()):
        if (candidate / "notebooks").is_dir():
            return candidate
    return None


def validate(directory=None, seeds: int = 50, root=None, seed_sample: int | None = None, sample: int = 50) -> Report:
    """Run every check on the banks in ``directory`` (default: the installed or repository banks).

    Generated questions are checked on seeds ``0 .. seeds - 1`` and on ``sample`` more drawn at random from
    ``seed_sample`` (a fresh one from the operating system's randomness unless given; the report names it).
    """
    started, report = time.perf_counter(), Report()
    report.seed_sample = secrets.randbelow(2**63) if seed_sample is None else seed_sample
    report.sampled = sample_seeds(report.seed_sample, sample) if sample > 0 else []
    generated_seeds = [*range(seeds), *(s for s in report.sampled if s >= seeds)]
    try:
        bank = load_banks(directory)
    except BankError as error:
        report.errors += [str(p) for p in error.problems]
        report.seconds = time.perf_counter() - started
        return report
    report.questions = len(bank.questions)
    hunts = [q for q in bank.questions if q.kind == "bughunt" and q.spec["specimen"] in bughunts.SPECIMENS]
    typed = dict(
        zip(
            (q.id for q in hunts),
            fixrun.judge_many([(q.spec["specimen"], q.spec["fixes"]) for q in hunts]),
            strict=True,
        )
    )
    singles = [q for q in bank.questions if q.kind == "single"]
    longest = [q for q in singles if _key_is_longest(q)]
    if singles and len(longest) > len(singles) / 2:
        report.notes.append(
            f"in {len(longest)} of {len(singles)} single-choice questions the right choice is the longest one: "
            "shuffling hides its letter, not its length (always picking the longest choice scores "
            f"{100 * len(longest) / len(singles):.0f}%)"
        )
    for q in bank.questions:
        try:
            report.errors += check_generated(q, generated_seeds) if q.generator else check_static(q, typed.get(q.id))
        except Exception as error:  # report, keep checking the other questions
            report.errors.append(f"{q.id}: checking it raised {type(error).__name__}: {error}")
    root = Path(root) if root is not None else pointer_root(bank.directory)
    if root is None:
        report.notes.append("notebook pointers not checked: no notebooks/ folder here (run from the repository)")
    else:
        for q in bank.questions:
            problem = resolve_pointer(q.notebook, root)
            if problem:
                report.errors.append(f"{Path(q.source).name}: question {q.id!r}: field 'notebook': {problem}")
    report.seconds = time.perf_counter() - started
    return report
