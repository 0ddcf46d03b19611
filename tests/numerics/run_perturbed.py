"""Execute the notebooks a second time on a perturbed machine and require the same printed output.

``make notebooks-perturbed`` runs this (``make test`` does too). It is nbval against the committed
outputs, exactly as ``make notebooks``, with every kernel in the numeric environment perturb.py
describes: other BLAS threads, numpy's SIMD paths above its baseline off, every random float moved
by up to one ulp. A cell whose printed numbers change here would change on a learner's machine.

    python tests/numerics/run_perturbed.py [--seed N] [--blas-threads N] [notebook ...] [-- pytest args]

Afterwards it checks the perturbation log: every kernel of the run must have loaded the perturbation,
or the run proved nothing and fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
import perturb  # noqa: E402  (imported, it only defines; the kernels load it as a startup file)


def default_blas_threads() -> int:
    """What the plain run uses: OPENBLAS_NUM_THREADS if set, otherwise one per core."""
    return int(os.environ.get("OPENBLAS_NUM_THREADS") or os.cpu_count() or 1)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pytest_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=int(os.environ.get("BPCORE_PERTURB_SEED") or 1))
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="BLAS threads for the perturbed run (default: 1, or 2 where the plain run uses 1)",
    )
    parser.add_argument("notebooks", nargs="*", help="default: every notebook in notebooks/")
    args = parser.parse_args(argv)
    notebooks = [Path(n) for n in args.notebooks] or sorted((REPO / "notebooks").glob("*.ipynb"))
    threads = args.blas_threads or (2 if default_blas_threads() == 1 else 1)

    with tempfile.TemporaryDirectory(prefix="bpcore-perturbed-") as tmp:
        root = Path(tmp)
        startup = root / "ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True)
        shutil.copy(HERE / "perturb.py", startup / "00-perturb.py")
        tmpdir = root / "an unusual TMPDIR ünï"  # a space and non-ASCII, like no /tmp (macOS: /var/folders/...)
        tmpdir.mkdir()
        log = root / "kernels.log"
        features = perturb.cpu_features_to_disable()
        env = {
            **os.environ,
            "BPCORE_HOME": str(root / "home"),  # a throwaway progress store, as in make notebooks
            "IPYTHONDIR": str(root / "ipython"),
            "BPCORE_PERTURB_SEED": str(args.seed),
            "BPCORE_PERTURB_LOG": str(log),
            "OPENBLAS_NUM_THREADS": str(threads),
            "NPY_DISABLE_CPU_FEATURES": features,
            "TMPDIR": str(tmpdir),
        }
        print(
            f"perturbed run: {threads} BLAS thread(s), numpy without [{features or 'nothing to switch off'}], "
            f"random floats nudged by up to 1 ulp (seed {args.seed}), TMPDIR {tmpdir}",
            flush=True,
        )
        # kernels over IPC (tests/numerics/ipc_kernels.py): no TCP ports to collide with the plain pass beside it
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.numerics.ipc_kernels"]
        command += ["--nbval", "--nbval-current-env"]
        command += ["--nbval-sanitize-with", str(REPO / "tests" / "nbval_sanitize.cfg"), *map(str, notebooks)]
        code = subprocess.run(command + pytest_args, cwd=REPO, env=env).returncode
        kernels = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
        perturbed = [line for line in kernels if line.endswith(f"tmp {tmpdir}")]
        if code == 0 and len(perturbed) < len(notebooks):
            print(
                f"perturbed run: only {len(perturbed)} of {len(notebooks)} kernels ran with the perturbation and "
                f"TMPDIR (IPython startup file {startup}); the run proves nothing:\n" + "\n".join(kernels),
                file=sys.stderr,
            )
            return 1
        return code


if __name__ == "__main__":
    sys.exit(main())
