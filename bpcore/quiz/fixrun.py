"""Typed bug-hunt fixes, judged by what they do: the line replaces the bug and the pass meets the engine.

A learner who types their own fix (``dh = delta_output @ W2`` rather than the listed ``dh = W2.T @
delta_output``) has written code, and code is judged by running it, as code questions are (see
:mod:`~bpcore.quiz.functions`): every fix that makes the backward pass agree with the engine's
gradients is right, however it is worded.

The typed text is never run in the grading process. :func:`judge` starts a child Python process (``python -m
bpcore.quiz.fixrun``) and sends it JSON on stdin; the child puts each typed line in place of the line the
learner named (the specimen's bug line if none is given), compiles the function, runs it on a few random
inputs against the engine's gradients (as :meth:`~bpcore.quiz.bughunts.Specimen.agrees` compares them), and
prints one ``RESULT`` line of JSON verdicts, marked with a nonce from the request so that nothing the
learner's code prints passes for it (:func:`judge_many` does several specimens in one child). The child stops
the learner's code after ``limit`` seconds per input (an interval timer), and the parent kills the child if it
is still running well after that (a loop inside numpy does not see the timer). What the learner's code prints
is swallowed; files it writes land in a temporary folder.

A verdict's ``status`` is one of ``agrees``, ``disagrees``, ``error`` (it raised, or returned the
wrong thing), ``syntax`` (not one valid line of Python: the answer is unreadable, not wrong) or
``timeout``; its ``message`` is written for the learner.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

TIME_LIMIT = 5.0  # seconds the learner's code may run, per fix, over all trial inputs
STARTUP_ALLOWANCE = 60.0  # the child's own start (Python, numpy, the engine) on a busy machine
TRIAL_SEEDS = tuple(range(6))  # the random inputs every fix is run on (the same for every learner)
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding bpcore/
_MARKER = "RESULT "
_LISTING_NUMBER = re.compile(r"^\s*\d+\s{2,}(?=[A-Za-z_])")  # "9  dZ1 = ..." pasted from the numbered listing


@dataclass
class Verdict:
    status: str
    message: str

    @property
    def ok(self) -> bool:
        return self.status == "agrees"


def clean(text: str) -> str:
    """The typed line as it will replace the bug: stripped, without a pasted listing number."""
    return _LISTING_NUMBER.sub("", text.strip(), count=1).strip()


def judge(
    specimen: str, lines: list[str], *, at: int | None = None, limit: float | None = None, seeds=TRIAL_SEEDS
) -> list[Verdict]:
    """Run each typed line in place of line ``at`` of ``specimen`` (default: its bug line), in a child process;
    one Verdict per line.

    ``at``: the 1-based line the learner named: their fix replaces that line, wherever the bug is.
    ``limit``: seconds the learner's code may run per trial input (default :data:`TIME_LIMIT`).
    """
    return judge_many([(specimen, lines, at)], limit=limit, seeds=seeds)[0]


def judge_many(jobs: list[tuple], *, limit: float | None = None, seeds=TRIAL_SEEDS):
    """:func:`judge` for several (specimen, lines) or (specimen, lines, at) jobs in one child process:
    a list of verdict lists."""
    limit = TIME_LIMIT if limit is None else float(limit)
    nonce = secrets.token_hex(16)  # the child's answer carries it: a line the learner's code prints cannot
    jobs = [(job[0], job[1], job[2] if len(job) > 2 else None) for job in jobs]
    request = {
        "jobs": [{"specimen": name, "lines": [clean(t) for t in lines], "at": at} for name, lines, at in jobs],
        "limit": limit,
        "seeds": list(seeds),
        "nonce": nonce,
    }
    count = sum(len(job[1]) for job in jobs)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(_PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")) if p),
        "OPENBLAS_NUM_THREADS": "1",  # tiny arrays: threads only slow the start
        "OMP_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    backstop = limit * len(seeds) * count + STARTUP_ALLOWANCE

    def every(status: str, message: str):
        return [[Verdict(status, message) for _ in lines] for _, lines, _ in jobs]

    with tempfile.TemporaryDirectory(prefix="bpcore-fix-") as folder:  # whatever the code writes lands here
        try:
            done = subprocess.run(
                [sys.executable, "-m", "bpcore.quiz.fixrun"],
                input=json.dumps(request),
                capture_output=True,
                text=True,
                timeout=backstop,
                cwd=folder,
                env=env,
            )
        except subprocess.TimeoutExpired:
            return every("timeout", _timeout_message(limit))
    marker = f"{_MARKER}{nonce} "
    for line in done.stdout.splitlines():
        if line.startswith(marker):
            found = json.loads(line[len(marker) :])
            return [[Verdict(v["status"], v["message"]) for v in verdicts] for verdicts in found]
    tail = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
    return every("error", f"checking your fix stopped before it finished ({tail[0]})")


def _timeout_message(limit: float, where: str = "the bug") -> str:
    return (
        f"with your line in place of {where}, the backward pass did not finish within {limit:g} s, "
        "so it was stopped: is there a loop that never ends?"
    )


# ----------------------------------------------------------------------------- the child process


class _TimeUp(BaseException):
    """Raised by the interval timer inside the learner's code (a BaseException: `except Exception` won't eat it)."""


def _describe(error: BaseException, bug_line: int, source_lines: list[str]) -> str:
    import traceback

    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == "<bug hunt>"]
    text = f"the backward pass raised {type(error).__name__}: {error}"
    if frames:
        lineno = frames[-1].lineno
        where = "in your line" if lineno == bug_line else f"at line {lineno}: `{source_lines[lineno - 1].strip()}`"
        text += f" ({where})"
    return text


def _run_one(specimen, text: str, seeds, limit: float, at: int | None = None) -> dict:
    """Judge ``text`` in place of line ``at`` (1-based; default the bug line) of the specimen's listing."""
    import signal

    import numpy as np

    if not text or "\n" in text:
        return {"status": "syntax", "message": "expected the fix as one line of Python"}
    lines = list(specimen.lines)
    at = specimen.bug_line if at is None else int(at)
    if not 1 <= at <= len(lines):
        return {"status": "error", "message": f"there is no line {at} in the listing (it has {len(lines)})"}
    where = "the bug" if at == specimen.bug_line else f"line {at}"
    index = at - 1
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    lines[index] = indent + text
    try:
        code = compile("\n".join(lines) + "\n", "<bug hunt>", "exec")
    except SyntaxError as error:
        return {"status": "syntax", "message": f"your fix is not valid Python here: {error.msg}"}
    namespace = dict(specimen.buggy.__globals__)  # numpy, Tensor: what the listing itself uses
    exec(code, namespace)  # defines backward() with their line in it; nothing of theirs runs yet
    fn = namespace["backward"]

    def time_up(signum, frame):
        raise _TimeUp

    timer = hasattr(signal, "setitimer")  # not on Windows: there the parent's backstop alone stops a loop
    if timer:
        signal.signal(signal.SIGALRM, time_up)
    for seed in seeds:
        values = specimen.inputs(np.random.default_rng(seed))
        try:
            if timer:
                signal.setitimer(signal.ITIMER_REAL, limit)
            with np.errstate(all="ignore"):
                mine = fn(**{k: np.array(v, copy=True) for k, v in values.items()})
        except _TimeUp:
            return {"status": "timeout", "message": _timeout_message(limit, where)}
        except Exception as error:  # their code failed: say what and where, without a traceback through this file
            return {"status": "error", "message": _describe(error, at, lines)}
        finally:
            if timer:
                signal.setitimer(signal.ITIMER_REAL, 0)
        problem = _compare(mine, specimen.engine_grads(values), where)
        if problem:
            return {"status": "disagrees", "message": problem}
    return {
        "status": "agrees",
        "message": f"with your line in place of {where}, every gradient agrees with the engine's "
        f"on {len(seeds)} random inputs",
    }


def _compare(mine, truth: dict, where: str = "the bug") -> str | None:
    """None if ``mine`` holds the engine's gradients; otherwise what differs, for the learner."""
    import numpy as np

    if not isinstance(mine, dict):
        return f"the backward pass should return a dict of gradients; it returned a {type(mine).__name__}"
    missing = sorted(truth.keys() - mine.keys())
    if missing:
        return f"the backward pass returned no gradient for {', '.join(missing)}"
    wrong = []
    for name, expected in truth.items():
        got = getattr(mine[name], "data", mine[name])
        try:
            got = np.asarray(got, dtype=np.float64)
        except (TypeError, ValueError):
            return f"d{name} is not an array of numbers"
        if got.shape != expected.shape:
            wrong.append(f"d{name} has shape {got.shape}, not {expected.shape}")
        elif not np.allclose(got, expected):
            wrong.append(f"d{name} is off by up to {float(np.max(np.abs(got - expected))):.3g}")
    if not wrong:
        return None
    return f"with your line in place of {where}, the gradients still disagree with the engine's: " + "; ".join(wrong)


def main() -> None:
    """The child: read the request, judge every line, print one RESULT line. Nothing else reaches stdout."""
    import io

    request = json.load(sys.stdin)
    out, sys.stdout = sys.stdout, io.StringIO()  # what the learner's code prints is not the result
    from bpcore.quiz.bughunts import SPECIMENS

    limit, seeds = float(request["limit"]), request["seeds"]
    verdicts = [
        [_run_one(SPECIMENS[job["specimen"]], text, seeds, limit, job.get("at")) for text in job["lines"]]
        for job in request["jobs"]
    ]
    out.write(f"{_MARKER}{request['nonce']} {json.dumps(verdicts)}\n")
    out.flush()


if __name__ == "__main__":
    main()
