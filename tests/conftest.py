"""Shared test settings.

On CI (the CI environment variable is set) hypothesis draws the same examples on every run, so a
submission is judged on the code, not on the luck of the draw; locally it keeps exploring.
"""

import os

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def replayed(monkeypatch):
    """The bp.compile functions made during the test; a CompileWarning fails it.

    ``replayed.check(signatures, functions)`` asserts that ``functions`` compiled functions were made (None: one or
    more) and that each replayed its calls: each signature traced at most twice, no call run eagerly. A lab that
    fell back to eager, or traced on every call, would still give eager's numbers, only slower: its bitwise test
    alone would not see it.
    """
    import importlib
    import warnings

    compile_module = importlib.import_module("bpcore.compile")  # (bpcore.compile is also the function)

    class Made(list):
        pass

    made = Made()
    original = compile_module.CompiledFunction.__init__

    def spy(self, fn, *args, **kwargs):
        original(self, fn, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(compile_module.CompiledFunction, "__init__", spy)

    def check(signatures: int = 1, functions: int | None = 1):
        expected = functions if functions is not None else max(1, len(made))  # None: one or more
        assert len(made) == expected, f"expected {expected} bp.compile function(s) made, got {len(made)}"
        for fn in made:
            assert fn.eager_calls == 0 and fn.traces <= 2 * signatures, (
                f"bp.compile({fn.__name__}) should replay its calls: {fn.traces} traces (at most {2 * signatures} "
                f"expected), {fn.replays} replays, {fn.eager_calls} eager calls ({fn.fallback_reason})"
            )

    made.check = check
    with warnings.catch_warnings():
        warnings.simplefilter("error", compile_module.CompileWarning)
        yield made
