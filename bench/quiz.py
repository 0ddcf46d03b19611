"""How fast is the quiz? The targets of issue 6, measured in one run.

    grading an engine-computed question   < 50 ms   (a fresh instance from its generator, then the checker)
    loading all banks                     < 200 ms  (parse and validate every TOML file)
    `bpcore --help`                       < 0.5 s   (a fresh process, wall clock)

Also shown, for context: a wrong answer (which runs the diagnosis), recording an attempt (one SQLite
transaction with fsync), and the whole `bpcore validate`. Each figure is the median of several runs;
on a busy machine wall-clock times vary, so process CPU time is printed beside the `--help` time.

    .venv/bin/python bench/quiz.py
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def child(args: list[str], repeat: int = 5) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of a fresh Python process, in seconds."""
    walls, cpus = [], []
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], env=env, capture_output=True, check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def row(what: str, value: str, target: str = "") -> None:
    print(f"  {what:<52}{value:>12}   {target}")


def main() -> None:
    help_wall, help_cpu = child(["-m", "bpcore.quiz.cli", "--help"])
    import_wall, _ = child(["-c", "import bpcore"])
    cold_wall, _ = child(["-c", "from bpcore.quiz.bank import load_banks; load_banks()"])

    from bpcore.quiz import bank, kinds
    from bpcore.quiz.instance import make_instance
    from bpcore.quiz.render import array_text

    def load_fresh():
        bank._cache.clear()
        return bank.load_banks()

    first_load = median_ms(load_fresh, 1)
    load_ms = median_ms(load_fresh, 20)
    cached_ms = median_ms(bank.load_banks, 50)
    questions = load_fresh().questions

    print("bpcore quiz benchmarks (median times)")
    row("bpcore --help, fresh process (wall)", f"{1000 * help_wall:.0f} ms", "target < 500 ms")
    row("bpcore --help, fresh process (CPU)", f"{1000 * help_cpu:.0f} ms")
    row("  of which `import bpcore` alone (wall)", f"{1000 * import_wall:.0f} ms")
    row(f"load all banks ({len(questions)} questions), first in process", f"{first_load:.1f} ms", "target < 200 ms")
    row("load all banks, parse + validate again", f"{load_ms:.1f} ms", "target < 200 ms")
    row("load all banks, unchanged files (cached)", f"{cached_ms:.3f} ms")
    row("fresh process: import the quiz and load the banks", f"{1000 * cold_wall:.0f} ms")

    seed = iter(range(10**6))
    worst = 0.0
    for q in (q for q in questions if q.generator):
        instance = make_instance(q, 0)
        right = (
            {k: array_text(v) for k, v in instance.key.items()}
            if isinstance(instance.key, dict)
            else array_text(instance.key)
        )

        def grade_right(q=q, right=right):
            kinds.check(make_instance(q, next(seed)), right)  # a new instance each time: generator + checker

        wrong_value = instance.mistakes[0] if isinstance(instance.mistakes, list) else None
        grade_ms = median_ms(grade_right, 30)
        worst = max(worst, grade_ms)
        row(f"grade {q.id} (new instance + check)", f"{grade_ms:.2f} ms", "target < 50 ms")
        if wrong_value is not None:
            wrong_ms = median_ms(lambda q=q, v=wrong_value.value: kinds.check(make_instance(q, 0), array_text(v)), 30)
            row("  ... a wrong answer, diagnosed", f"{wrong_ms:.2f} ms")
    row("slowest engine-computed grade", f"{worst:.2f} ms", "target < 50 ms")

    code = bank.load_banks().get("three-layer-code-linear-backward")
    from bpcore.quiz.functions import REFERENCES

    solution = REFERENCES["linear_backward"].solution
    row(
        "grade a code question (3 trials, gradient checks)",
        f"{median_ms(lambda: kinds.check(make_instance(code, 0), solution), 10):.1f} ms",
    )

    from bpcore.quiz import schedule
    from bpcore.quiz.store import Store

    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "progress.db") as store:
        counter = iter(range(10**6))

        def record():
            i = next(counter)
            store.record_attempt(
                f"q{i % 10}", i, "b", 1.0, rating=3, review=lambda old, i=i: schedule.review(old, f"q{i % 10}", 3)
            )

        row("record one attempt + its review state (fsync)", f"{median_ms(record, 50):.2f} ms")

    from bpcore.quiz.validate import validate

    start = time.perf_counter()
    report = validate()
    row(
        "bpcore validate (50 seeds per generator)", f"{time.perf_counter() - start:.2f} s", "ok" if report else "ERRORS"
    )


if __name__ == "__main__":
    main()
