"""The ``bpcore`` command's entry point and options, outside the package on purpose.

Importing anything inside ``bpcore`` runs ``bpcore/__init__.py``, which loads the whole engine. This
module imports argparse only, so ``bpcore --help`` (and an option typed wrong) answers at once; the
command itself runs in :mod:`bpcore.quiz.cli`, imported once the options are known to be valid.
"""

from __future__ import annotations

import argparse
import math
import os

COMMANDS_HELP = "While answering: ? hint, ! solution, q quit, empty line skips."


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors, no usage block: ``bpcore quiz: error: unknown option: --bogus (...)``."""

    def error(self, message: str):
        message = message.replace("unrecognized arguments:", "unknown option:")
        self.exit(2, f"{self.prog}: error: {message} (`{self.prog} --help` lists the options)\n")


def _whole(text: str, minimum: int, example: str, too_small: str) -> int:
    """``text`` as a whole number >= ``minimum``, else an argparse error naming what arrived."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number {example}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{too_small}, got {value}")
    return value


def _count(text: str) -> int:
    """A number of questions: a whole number >= 1."""
    return _whole(text, 1, "of questions such as 5", "expected at least 1 question")


def _seeds(text: str) -> int:
    """Seeds per generator for validate: a whole number >= 1."""
    return _whole(text, 1, "of seeds such as 50", "expected at least 1 seed per generator")


def _seed(text: str) -> int:
    """A random seed: a whole number >= 0 (numpy refuses negative seeds)."""
    return _whole(text, 0, "such as 42", "expected a seed >= 0")


def _minutes(text: str) -> float:
    """A time limit in minutes: a finite number > 0 (nan and inf are not limits)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of minutes such as 30, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number of minutes > 0, got {text!r}")
    return value


def _export_file(text: str) -> str:
    """Where an export goes: a file name in a folder that exists, not a folder itself."""
    folder = os.path.dirname(os.path.abspath(text))
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(
            f"{text} is a folder; give a file name, e.g. {os.path.join(text, 'progress.json')}"
        )
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"the folder {folder} does not exist; create it first or export elsewhere")
    return text


def _import_file(text: str) -> str:
    """What an import reads: an existing file."""
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a folder; give the JSON file that `bpcore export` wrote")
    if not os.path.exists(text):
        raise argparse.ArgumentTypeError(f"no file {text}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="bpcore",
        description="Backpropagation interview practice: questions checked by the bpcore engine.",
        epilog="Progress lives in $BPCORE_HOME (default: your per-user data folder). " + COMMANDS_HELP,
    )
    parser.add_argument("--banks", metavar="DIR", help="read question banks from DIR instead of the installed ones")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def session_options(sub, n_default):
        sub.add_argument("-n", type=_count, default=n_default, help=f"number of questions (default {n_default})")
        sub.add_argument("--seed", type=_seed, help="make the numbers of this session reproducible")

    quiz = commands.add_parser("quiz", help="practise: due reviews first, then new questions")
    quiz.add_argument("--topic", help="one topic (see `bpcore stats`)")
    quiz.add_argument("--level", choices=("basic", "intermediate", "advanced"))
    session_options(quiz, 5)
    session_options(commands.add_parser("review", help="only the questions that are due"), 20)
    mock = commands.add_parser("mock", help="a timed mock interview, feedback at the end")
    mock.add_argument("--minutes", type=_minutes, default=30.0, help="time limit (default 30)")
    session_options(mock, 10)
    commands.add_parser("stats", help="mastery by topic, streak, reviews due")
    validate = commands.add_parser("validate", help="check every bank (for authors)")
    validate.add_argument("--seeds", type=_seeds, default=50, help="fixed seeds per generator, 0 to N-1 (default 50)")
    validate.add_argument("--sample", type=_seed, default=50, help="random seeds per generator on top (default 50)")
    validate.add_argument(
        "--seed-sample", type=_seed, metavar="N", help="draw the random seeds from N (replays a reported run)"
    )
    commands.add_parser("export", help="write your progress to a JSON file").add_argument("file", type=_export_file)
    commands.add_parser("import", help="merge progress from a JSON export").add_argument("file", type=_import_file)
    return parser


def main(argv=None) -> int:
    """The console script: parse (``--help`` prints and exits here), then run the command."""
    args = build_parser().parse_args(argv)
    from bpcore.quiz.cli import run

    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
