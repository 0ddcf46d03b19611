"""Traced replay: ``step = bp.compile(train_step)`` runs the same step with far less Python per op.

Eager autodiff pays, on every call, for work whose outcome never changes while the shapes stay
the same: wrapping each result in a Tensor, recording its inputs and VJPs, sorting the graph for
backward, checking shapes and dtypes at every edge, walking module layers. ``compile`` pays it
once. The first call runs eagerly while a tracer writes down what happened:

* every primitive (its ``forward`` function from ``ops.py``, which arrays it read, its settings);
* every ``backward()``: the order in which the VJPs ran and where their gradients were summed;
* every optimizer ``zero_grad()`` and ``step()`` (they work on raw arrays: replayed as calls, or
  written out: zero_grad, the update of each parameter, plain SGD's p <- p - lr g).

From that record it writes one straight-line Python function (``step.source`` shows it) that calls
the *same* forward functions and the *same* VJPs, in the same order, on raw numpy arrays, so
its results are bitwise identical to eager. The second call with the same shapes runs eagerly
again and checks the replay against it (parameters, gradients, optimizer state and the returned
values, bit for bit); from the third call on the replay runs alone. The record is kept per
signature (the shapes and dtypes of the array arguments, the values of plain ones): a new shape
traces again, for up to ``max_signatures`` signatures (8 unless given); calls of any further one run
eagerly.

When replay could not be trusted the call runs eagerly, and ``step.fallback_reason`` (plus one
warning per reason) says why: anomaly mode; a hook or ``retain_grad`` in the graph; Python that
reads a tensor's value to decide what to do (``if loss > 1``, ``bool(x)``, ``.item()`` used other
than as a returned value); ops run inside backward (checkpointing); a second call that ran
different ops; a second call that changed Python state it reads (appended to a history list, counted,
set an attribute of an object it names); an argument changed on one of the first two calls
(``y -= 1``, a tensor's ``.data`` replaced, a parameter's own array passed in and updated,
``logs['loss'] = loss`` on a dict it was given, an attribute of an object it was given, two levels
deep: the second call's check also replays on the arguments as they were given and compares them
after); a view of an argument made in numpy (``y[:, 0]``) read by an op, unless that argument is the
same on both calls; a replay that did not match eager (a side effect outside the ops and optimizers).
What the first two calls do not show stays unseen: a numpy edit that first changes something on a
later call (``np.clip(x, -1, 1, out=x)`` on a batch that was in range until then; a WGAN critic's
``np.clip(w.data, -c, c, out=w.data)`` while the weights were still in range): do such edits of
parameters outside the compiled step, after calling it.

Before each replay it checks what the record took as given (in generated code at the top of the
replay, as straight-line comparisons), and traces again (eagerly) when any of it changed: each
module's mode and plain settings and its parameters (``model.eval()``, a Dropout's ``p``,
``requires_grad_(False)``, a replaced Parameter, a ``.data`` of another dtype or shape such as
after ``model.to(float64)``), each optimizer's parameters,
the globals and closure variables the function names, and those its own helper functions name, a
few calls deep (plain values by value, small dicts and lists by their items, other objects by
identity), and the class targets of ``cross_entropy`` and
``nll_loss`` (out-of-range targets raise eager's error; an ignored target means other ops).
BatchNorm's running statistics, ``scheduler.step()`` and gradient clipping work on raw arrays and
are replayed as calls, like the optimizer.

The attributes of a learner's own objects that the function names (``self`` of a bound method
such as ``trainer.train_step``, a trainer or config in its globals or closure) are checked too (plain
values by value, others by identity), and so are those a trainer or config given as an argument has
under a name the function's code (or its helpers, or the methods of it they name) uses; all of them
if the code uses ``getattr``, ``hasattr``, ``vars`` or ``__dict__`` (one whose class has
``__slots__`` cannot be checked: the step runs eagerly). A value it reads that changed between the first two calls
starts the record again. A record that goes stale before it has replayed once says so in a warning
(once); three in a row, and the signature runs eagerly for 4, then 8, 16... calls before it traces
again.

What it cannot see, as with ``jax.jit`` and ``torch.jit.trace``: values read through ``.data``
or numpy, and Python state the function reaches only deeper through objects (an attribute of an
attribute, a method's globals), are frozen at trace time (the check on the second
call catches them when they change between the first two calls; an argument equal on both is checked unchanged
before each replay, since what numpy computed from it may be frozen). The returned tensors carry
values, not a graph: backward already ran inside the step.
"""

from __future__ import annotations

import copy
import itertools
import re
import types
import warnings
from collections.abc import Callable

import numpy as np

from bpcore.nn.module import Module
from bpcore.optim import SGD, Optimizer, _check_grad
from bpcore.tensor import (
    SWITCHES,
    SliceGrad,
    Tensor,
    add_slice_grad,
    run_backward,
    topological_order,
    unbroadcast,
    vjp_edges,
    watch_vjps,
)

__all__ = ["CompileWarning", "CompiledFunction", "compile"]


class CompileWarning(UserWarning):
    """A compiled function ran eagerly; the message (and ``fallback_reason``) says why."""


class _Stale(Exception):
    """A record's assumptions no longer hold (a module switched to eval, a parameter frozen or replaced, a global
    changed): the call is traced again, eagerly."""


class _OtherSignature(Exception):
    """The arguments are not of the shapes, dtypes (or kinds) the replay was recorded for: look for another."""


class _Fallback(Exception):
    """Raised inside the tracer's bookkeeping: this call cannot be replayed (the reason is the message)."""


def compile(fn: Callable, max_signatures: int = 8) -> CompiledFunction:
    """``step = bp.compile(train_step)``: the same function, replayed from a record of its first call.

    ``train_step`` may take tensors, numpy arrays and plain numbers (ints, floats, strings, None),
    and do anything eager bpcore does: forward, ``loss.backward()``, ``optimizer.zero_grad()``,
    ``optimizer.step()``. It may return tensors, numbers (``loss.item()``), or tuples, lists and
    dicts of them. See the module docstring for what makes a call run eagerly instead.

    A record is kept per signature, for at most ``max_signatures`` of them (as ``torch.compile``
    stops recompiling after 8): calls of a further signature run eagerly, with a warning, so a
    plain value that changes on every call (a float passed as an argument, targets as a Python list)
    cannot grow the cache without bound.
    """
    return CompiledFunction(fn, max_signatures)


def _signature_part(value, arrays: list, objects: list):
    """The cache key of one argument; arrays (and tensors) are collected in call order."""
    if isinstance(value, Tensor):
        arrays.append(value)
        return ("T", value.data.shape, value.data.dtype.str, value.requires_grad)
    if isinstance(value, np.ndarray):
        arrays.append(value)
        return ("A", value.shape, value.dtype.str)
    if value is None or isinstance(value, bool | int | float | str | np.generic):
        return (type(value).__name__, value)
    if isinstance(value, tuple | list):
        return (type(value).__name__, *(_signature_part(v, arrays, objects) for v in value))
    if isinstance(value, dict):
        return ("dict", *((k, _signature_part(v, arrays, objects)) for k, v in value.items()))
    objects.append(value)  # a model or any other object: the same object, the same record
    return ("object", id(value))


def _argument_state(args: tuple, kwargs: dict) -> list:
    """What a call could change in the dicts, lists and learner's objects it is given (their items, their
    attributes: plain values by value, others by identity); arrays and tensors are compared on their own."""
    state = []
    for value in (*args, *kwargs.values()):
        if type(value) in (dict, list):
            state.append(_fingerprint(value))
        elif not isinstance(value, np.ndarray | Tensor) and type(value) not in _PLAIN and _learners_object(value):
            state.append(_object_state(value, 2))
    return state


def _object_state(value, depth: int):
    """A learner's object's attributes, fingerprinted (arrays by their bytes, dicts and lists two levels deep);
    the learner's objects among them to ``depth`` levels."""
    def part(v):
        if isinstance(v, np.ndarray):
            return (v.shape, v.dtype.str, v.tobytes())
        return _object_state(v, depth - 1) if depth > 1 and _learners_object(v) else _fingerprint(v, 2)

    return (id(value), tuple((k, part(v)) for k, v in vars(value).items()))


def _argument_arrays(arrays: list) -> tuple[list, list]:
    """The argument arrays (a tensor argument: its .data) as they are now: the objects, and copies."""
    now = [a.data if isinstance(a, Tensor) else a for a in arrays]
    return now, [np.array(n, copy=True) for n in now]


def _set_arguments(arrays: list, objects: list, contents: list) -> None:
    """Give the argument arrays (a tensor argument: its .data) these objects with these contents, writing only
    where the contents differ. Raises _Fallback when that cannot be done (a shape set in place, an array not
    writeable): the function changed an argument in a way no replay would."""
    for a, array in zip(arrays, objects, strict=True):
        if isinstance(a, Tensor) and a.data is not array:
            a.data = array
    for _ in range(2):  # (a read-only view of another argument comes right once that one is written)
        left = False
        for array, content in zip(objects, contents, strict=True):
            if not _same(array, content):
                if array.shape != content.shape or array.dtype != content.dtype or not array.flags.writeable:
                    left = True
                else:
                    array[...] = content
        if not left:
            return
    raise _Fallback("the function changes an argument in place in a way the check cannot undo (its shape or dtype "
                    "set, or an array that is not writeable), which a replay would not do: work on a copy")


def _changed_arguments(arrays: list, values: list, leaves: list) -> str | None:
    """Why a traced call must run eagerly: it changed an argument array (None when it changed none). The
    array of a parameter given as an argument counts too: the optimizer's update of it and the step's own
    numpy edits of it look the same from here."""
    for k, (a, value) in enumerate(zip(arrays, values, strict=True)):
        array = a.data if isinstance(a, Tensor) else a
        if not _same(array, value):
            if any(np.may_share_memory(array, p.data) for p in leaves):
                return (f"the {value.dtype} {value.shape} array given as array argument {k + 1} of {len(arrays)} is "
                        "a parameter's array (or a view of one), which the step changes: pass a copy (w.copy()) if "
                        "the step only reads it")
            return _changed(k, value, len(arrays))
    return None


def _changed(k: int, value: np.ndarray, count: int) -> str:
    return (f"the function changes an argument in place (the {value.dtype} {value.shape} array, array argument "
            f"{k + 1} of {count}: numpy on its values, or a tensor's .data replaced), which a replay would not do: "
            "work on a copy (y = y - 1 rather than y -= 1; t = bp.Tensor(new) rather than t.data = new)")


def _arguments_differ(arrays: list, eager: tuple[list, list]) -> str | None:
    """Why the argument arrays after the replay are not as eager left them (None when they are)."""
    for k, (a, content) in enumerate(zip(arrays, eager[1], strict=True)):
        if not _same(a.data if isinstance(a, Tensor) else a, content):
            return _changed(k, content, len(arrays))
    return None


def _quick_key(args: tuple) -> tuple | None:
    key = [SWITCHES.grad_enabled]
    for a in args:
        if type(a) is np.ndarray:
            key.append(a.shape)
            key.append(a.dtype)
        elif isinstance(a, Tensor):
            data = a.data
            key.append((data.shape, data.dtype, a.requires_grad))
        else:
            return None
    return tuple(key)


_STALE_UNUSED = ("its record went stale before it could replay once, so it traced again: if that happens on every "
                 "call, something it takes as given changes between calls (a global or an attribute it reads, a "
                 "module's mode, a parameter replaced) and it never replays")


_WAITING = ("its records went stale before they could replay, three times or more in a row (something it takes as "
            "given changes between calls: a global or an attribute it reads, a module's mode, a parameter replaced): "
            "it runs eagerly for a while (4, 8, 16... calls), then traces again")


class CompiledFunction:
    """What :func:`compile` returns. Call it like the function it wraps.

    Attributes:
        fallback_reason: None while calls are traced or replayed; why the last call ran eagerly otherwise.
        traces, replays, eager_calls: how many calls were recorded, replayed, run eagerly.
        source: the replay function generated for the most recent signature (None before one exists).
    """

    def __init__(self, fn: Callable, max_signatures: int = 8):
        if not callable(fn):
            raise TypeError(
                f"bp.compile expects a function to compile (the training step, e.g. def step(x, y): ...), "
                f"got {type(fn).__name__} {fn!r}"
            )
        if isinstance(max_signatures, bool) or not isinstance(max_signatures, int) or max_signatures < 1:
            raise ValueError(f"bp.compile: max_signatures must be a whole number >= 1, got {max_signatures!r}")
        self.max_signatures = max_signatures
        self._fn = fn
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn
        self._entries: dict[tuple, _Entry] = {}
        self._quick: dict[tuple, Callable] = {}  # positional tensors and arrays only: a cheaper key
        self._last: Callable | None = None  # of those, the replay that ran last (tried first, without a key)
        self._warned: set[str] = set()
        self._stale_counts: dict[tuple, int] = {}  # signature -> its records gone stale unused, in a row
        self._waiting: dict[tuple, int] = {}  # signature -> eager calls left before it is traced again
        self.fallback_reason: str | None = None
        self.source: str | None = None
        self.traces = self.replays = self.eager_calls = 0

    def __repr__(self) -> str:
        return f"<compiled {self.__name__}: {len(self._entries)} signature(s)>"

    def __call__(self, *args, **kwargs):
        if not kwargs and SWITCHES.tracer is None and not SWITCHES.anomaly:  # the common call: arrays only
            replay = self._last  # the replay that ran last: it checks that the arguments are of its signature
            if replay is not None:
                try:
                    result = replay(args)
                except _OtherSignature:
                    pass
                except _Stale:
                    self._forget(replay)
                else:
                    self.replays += 1
                    self.fallback_reason = None
                    return result
            quick = _quick_key(args)
            replay = self._quick.get(quick) if quick is not None else None
            if replay is not None:
                try:
                    result = replay(args)
                except (_Stale, _OtherSignature):
                    self._forget(replay)
                else:
                    self._last = replay
                    self.replays += 1
                    self.fallback_reason = None
                    return result
        if SWITCHES.tracer is not None:  # inside another compiled function's trace: be part of it
            return self._fn(*args, **kwargs)
        if SWITCHES.anomaly:
            return self._eager("anomaly mode is on (detect_anomaly checks every op, which replay skips)", args, kwargs)
        arrays: list = []
        objects: list = []
        key = (
            SWITCHES.grad_enabled,
            tuple(_signature_part(a, arrays, objects) for a in args),
            tuple((k, _signature_part(v, arrays, objects)) for k, v in kwargs.items()),
        )
        if self._waiting.get(key):  # its records kept going stale unused: eager for a while, then again
            self._waiting[key] -= 1
            return self._eager(_WAITING, args, kwargs)
        entry = self._entries.get(key)
        if entry is not None and entry.replay is not None:
            try:
                result = entry.replay(arrays)
            except (_Stale, _OtherSignature):
                self._forget(entry.replay)
                entry = None
            else:
                self.replays += 1
                self.fallback_reason = None
                return result
        if entry is not None and entry.eager_reason is not None:
            return self._eager(entry.eager_reason, args, kwargs)
        if entry is None:
            if len(self._entries) >= self.max_signatures:
                return self._eager(
                    f"its calls had more than {self.max_signatures} signatures (shapes and dtypes of the arrays, "
                    "values of plain arguments), so new ones run eagerly: pass a number that changes on every "
                    "call as an array or set it on the optimizer (param_groups), and targets as an array, "
                    "not a list", args, kwargs)
            entry = self._entries[key] = _Entry(objects, key)
        return self._trace(entry, args, kwargs, arrays)

    def _forget(self, replay) -> None:
        """Drop a record whose assumptions no longer hold: the next call of its signature is traced anew. One
        that goes stale before it has replayed once says so, once (something it takes as given may change on
        every call, so that it never replays)."""
        for key in [k for k, e in self._entries.items() if e.replay is replay]:
            self._unused(key, self.replays == self._entries.pop(key).trusted_at)
        for key in [k for k, r in self._quick.items() if r is replay]:
            del self._quick[key]
        if self._last is replay:
            self._last = None

    # -- the two slow paths -----------------------------------------------------------
    def _eager(self, reason: str, args, kwargs):
        self.eager_calls += 1
        self.fallback_reason = reason
        self._note(reason)
        return self._fn(*args, **kwargs)

    def _unused(self, key: tuple, unused: bool) -> None:
        """A record of ``key`` went stale (or started again) before it replayed once (``unused``), or after."""
        count = self._stale_counts[key] = self._stale_counts.get(key, 0) + 1 if unused else 0
        if unused:
            self._note(_STALE_UNUSED)
        if count >= 3:  # tracing on every call costs several eager calls each: wait 4, 8, 16... calls
            self._waiting[key] = 2 ** (count - 1)

    def _note(self, reason: str) -> None:
        if reason not in self._warned:  # one warning per reason
            self._warned.add(reason)
            warnings.warn(f"bp.compile({self.__name__}) runs eagerly: {reason}", CompileWarning, stacklevel=4)

    def _trace(self, entry: _Entry, args, kwargs, arrays: list):
        """Run eagerly while recording. The first call keeps the record; the second checks the replay."""
        checking = entry.record is not None
        before = entry.record.snapshot() if checking else None
        values = [np.array(a.data if isinstance(a, Tensor) else a, copy=True) for a in arrays]  # as called
        called = [a.data if isinstance(a, Tensor) else a for a in arrays]  # (the arrays themselves)
        containers = _argument_state(args, kwargs)
        tracer = _Tracer(arrays, self._fn, positional=not kwargs and len(arrays) == len(args) and
                         _quick_key(args) is not None, objects=(*args, *kwargs.values()))
        SWITCHES.tracer = tracer
        try:
            result = self._fn(*args, **kwargs)
        finally:
            SWITCHES.tracer = None
        self.traces += 1
        self.fallback_reason = None
        try:
            if _argument_state(args, kwargs) != containers:
                raise _Fallback("the function changes a dict, list or object it was given (logs['loss'] = loss, "
                                "tally.steps += 1), which a replay would not do: return the values instead")
            record = tracer.finish(result)
            changed = _changed_arguments(arrays, values, record.leaves)
            if changed:
                raise _Fallback(changed)
            if tracer.function_state.unguarded:
                raise _Fallback(f"a {tracer.function_state.unguarded} given as an argument has no __dict__ (its class "
                                "uses __slots__), so what the step reads of it cannot be checked before a replay")
            if checking and tracer.function_state.start_reads != entry.record.reads_after:
                checking = False  # a global or closure value it reads changed between the calls: start again
                self._unused(entry.key, True)
            if not checking:
                entry.record = record
                entry.first_values = values
                self.source = record.source
                return result
            first_values = entry.first_values
            pinned = [k for k, (first, now) in enumerate(zip(first_values, values, strict=True)) if _same(first, now)]
            viewed = sorted(set(entry.record.viewed_arguments) - set(pinned))
            if viewed:
                raise _Fallback(
                    f"an op read a view of array argument {viewed[0] + 1} made in numpy (such as y[:, 0] or xs[t]), "
                    "which a replay would take from the first call: index with bpcore ops (bp.Tensor(xs)[t] rather "
                    "than bp.Tensor(xs[t])) or pass the view itself as an argument")
            entry.record.check_same_ops(record)
            if tracer.function_state.changed():
                raise _Fallback("the function changes Python state that it reads (appends to a list, counts, sets an "
                                "attribute of an object it names), which a replay would not do")
            after, eager_arguments = entry.record.snapshot(), _argument_arrays(arrays)
            try:
                entry.record.restore(before)
                _set_arguments(arrays, called, values)  # the replay starts from what eager was given
                try:
                    replayed = entry.record.replay(arrays, False)
                except Exception as error:  # (eager ran without it: the record is what is wrong)
                    raise _Fallback(f"the replay raised {type(error).__name__} ({error}) where eager did not (the "
                                    "function changes an argument and changes it back, or reads state the record "
                                    "froze)") from None
                mismatch = entry.record.compare(after, replayed, result) or _arguments_differ(arrays, eager_arguments)
            finally:
                entry.record.restore(after)  # eager's outcome is the truth, whatever the replay did
                _set_arguments(arrays, *eager_arguments)
            if mismatch:
                raise _Fallback(mismatch)
            # an argument equal on both calls did not show whether arrays and numbers computed from it in numpy
            # (x / 255, the smoothed targets of a loss) are frozen in the record: replay only while it stays so
            entry.first_values = []
            entry.record.pin([(k, first_values[k]) for k in pinned])
        except _Fallback as why:
            entry.eager_reason = str(why)
            entry.record = None
            self.eager_calls += 1
            self.traces -= 1
            self.fallback_reason = entry.eager_reason
            if entry.eager_reason not in self._warned:
                self._warned.add(entry.eager_reason)
                warnings.warn(f"bp.compile({self.__name__}) runs eagerly: {entry.eager_reason}", CompileWarning,
                              stacklevel=3)
            return result
        entry.replay, entry.trusted_at = entry.record.replay, self.replays
        self.source = entry.record.source
        if not kwargs and len(arrays) == len(args):
            quick = _quick_key(args)
            if quick is not None:
                self._quick[quick] = self._last = entry.replay
        return result


class _Entry:
    """One signature: its record, and either the trusted replay (a function of the argument arrays) or the
    reason to stay eager."""

    __slots__ = ("eager_reason", "first_values", "key", "objects", "record", "replay", "trusted_at")

    def __init__(self, objects: list, key: tuple = ()):
        self.objects = objects  # keeps the objects the key names by id alive
        self.record: _Record | None = None
        self.first_values: list[np.ndarray] = []  # the argument arrays of the recorded call, as it was called
        self.replay: Callable | None = None
        self.eager_reason: str | None = None
        self.trusted_at = -1  # the count of replays when its replay was trusted
        self.key = key


# ----------------------------------------------------------------------------- recording


class _Tracer:
    """Set as ``SWITCHES.tracer`` during a recorded call; the engine's hooks call its methods."""

    def __init__(self, arrays: list, fn: Callable | None = None, positional: bool = False, objects: tuple = ()):
        # the arguments are these arrays and tensors, in order, and nothing else: their quick key, as called
        self.signature = [(isinstance(a, Tensor), a.requires_grad if isinstance(a, Tensor) else None)
                          for a in arrays] if positional else None
        self.grad_enabled = SWITCHES.grad_enabled
        self.function_state = _FunctionState(fn, objects)
        self.start = Tensor(np.empty(0))._number + 1  # tensors made during the call get this number or more
        self.inputs = arrays  # tensors and arrays of the arguments, in call order
        self.input_index = {}  # id(array or tensor) -> position among the inputs
        self.viewed: set[int] = set()  # the inputs that a constant array the ops took is a view of
        for k, a in enumerate(arrays):
            self.input_index.setdefault(id(a), k)
            if isinstance(a, Tensor):
                self.input_index.setdefault(id(a.data), k)
        self.ops: list[tuple] = []  # (primitive, arg specs, setting specs)
        self.outs: list[tuple] = []  # keeps every output alive, so ids stay unique while recording
        self.slot_of: dict[int, int] = {}  # id(output tensor or its data) -> op index (the data decides first:
        # after x += y inside a graph, the tensor x holds the add's output)
        self.events: list[tuple] = []  # ("op", k) / ("backward", root, grad spec) / ("call", fn, args, kwargs)
        self.reads: dict[int, tuple] = {}  # id(returned value) -> (op slot, how) for item()/numpy()/tolist()
        self.read_values: list = []
        self.problem: str | None = None
        self.in_backward = False
        self.vjp_results: dict[tuple[int, int], tuple] = {}  # (id(node), input index) -> (shape, dtype, fresh)
        self.vjp_arrays: dict[int, np.ndarray] = {}  # every array a watched VJP returned (alive: ids stay unique)
        self.call_results: dict[int, int] = {}  # id(value a recorded call returned) -> its event's index
        self.checks: list[tuple] = []  # (argument position, check, what it returned while tracing)
        self.modules: dict[int, tuple] = {}  # id(module) -> (module, its state when first called)

    # -- hooks called by the engine --------------------------------------------------
    def op(self, primitive, inputs, settings, out) -> None:
        if self.in_backward:
            self._refuse(f"'{primitive.name}' ran inside backward() (checkpointing or a VJP that calls ops)")
        k = len(self.ops)
        try:
            specs = tuple(self._spec(x) for x in inputs)
            setting_specs = tuple((name, self._spec(v)) for name, v in settings.items())
        except _Fallback as why:
            self._refuse(str(why))
            specs, setting_specs = (), ()
        self.ops.append((primitive, specs, setting_specs, out.requires_grad))
        self.outs.append((out, out.data))  # (an in-place change later gives out other data: keep this one)
        self.slot_of[id(out)] = k
        self.slot_of[id(out.data)] = k
        self.events.append(("op", k))

    def check_input(self, value, check: Callable) -> None:
        """``check(array)`` validates an argument (class targets) and returns what the ops taken depend on;
        the replay runs it on each call's argument first: an error or another answer means an eager trace."""
        k = self.input_index.get(id(value))
        if k is None and isinstance(value, Tensor):  # bp.Tensor(y) made inside the function: its data is y
            k = self.input_index.get(id(value.data))
        if k is not None:
            self.checks.append((k, check, check(value.data if isinstance(value, Tensor) else value)))

    def module(self, module) -> None:
        if id(module) not in self.modules:
            keys = _module_keys(module)
            values = tuple(module.__dict__[k] for k in keys)  # kept alive with the record: compared by identity
            read = () if module.training else tuple(module._buffers)  # eval: the forward reads them as constants
            state = (len(module.__dict__), _buffer_bytes(module.__dict__, read))
            self.modules[id(module)] = (module, keys, values, read, state)

    def backward(self, root: Tensor, grad) -> None:
        if SWITCHES.anomaly:
            self._refuse("anomaly mode was switched on inside the function")
        self.events.append(("backward", root, grad))
        undo = []
        for node in topological_order(root):  # watch each VJP once, to learn the shape and dtype it returns
            if node.op is not None:
                undo.append(watch_vjps(node, lambda index, vjp, node=node: self._watch(node, index, vjp)))
        self.in_backward = True
        try:
            run_backward(root, grad)
        finally:
            self.in_backward = False
            for restore in undo:
                restore()

    def _watch(self, node: Tensor, index: int, vjp):
        def watched(g):
            gx = vjp(g)
            # fresh: an array this VJP made for this edge alone, which a leaf may keep as its .grad uncopied
            fresh = (isinstance(gx, np.ndarray) and gx is not g and gx.flags.owndata and gx.flags.writeable
                     and id(gx) not in self.vjp_arrays)
            self.vjp_arrays[id(gx)] = gx
            if type(gx) is SliceGrad:  # one slice of the input's gradient (backward adds it in place)
                self.vjp_results[id(node), index] = ("slice", gx.value.dtype, False)
                return gx
            self.vjp_results[id(node), index] = (np.shape(gx), getattr(gx, "dtype", None), fresh)
            return gx

        return watched

    def call(self, method, args, kwargs):
        n = len(self.events)
        self.events.append(("call", method, args, kwargs))
        SWITCHES.tracer = None  # what the call does inside is part of the call
        try:
            result = method(*args, **kwargs)
        finally:
            SWITCHES.tracer = self
        if isinstance(result, float | np.ndarray | np.generic):  # (clip_grad_norm_'s norm): returned, it is c{n}
            self.read_values.append(result)  # alive until finish(), so its id stays its own
            self.call_results[id(result)] = n
        return result

    def read(self, tensor: Tensor, how: str, reader):
        value = reader(tensor)
        self.read_values.append(value)  # alive until finish(), so its id stays its own
        self.reads[id(value)] = (tensor, how)
        return value

    def random(self) -> None:
        self._refuse("random numbers are drawn inside the function (a Dropout mask in training mode, bp.randn, "
                     "bp.rand): a replay would reuse the first call's numbers")

    def branch(self, tensor: Tensor, how: str) -> None:
        self._refuse(f"Python reads a tensor's value to decide what to do ({how} on a tensor of shape "
                     f"{tensor.shape}): the replay could not follow a different branch")

    def _refuse(self, reason: str) -> None:
        if self.problem is None:
            self.problem = reason

    # -- where an op's argument comes from -----------------------------------------
    def _spec(self, x):
        if isinstance(x, Tensor):
            k = self.slot_of.get(id(x.data), self.slot_of.get(id(x)))
            if k is not None:
                return ("value", k)
            k = self.input_index.get(id(x), self.input_index.get(id(x.data)))
            if k is not None:
                return ("input", k)
            if x._number >= self.start:
                if x.requires_grad:
                    raise _Fallback(f"a tensor requiring grad (shape {x.shape}) was created inside the function; "
                                    "create parameters outside it")
                return ("constant", self._frozen(x.data))
            return ("leaf", x)
        if isinstance(x, np.ndarray):
            k = self.slot_of.get(id(x))
            if k is not None:
                return ("value", k)
            k = self.input_index.get(id(x))
            if k is not None:
                return ("input", k)
            return ("constant", self._frozen(x))
        if isinstance(x, tuple) and any(isinstance(v, np.ndarray | Tensor) for v in x):
            return ("tuple", tuple(self._spec(v) for v in x))
        return ("constant", x)

    def _frozen(self, array: np.ndarray) -> np.ndarray:
        """An array an op took that the record keeps as a constant: a copy where it is a view into an
        argument (``y[:, 0]``), since on later calls that argument is another array (or the caller's
        buffer, refilled). Such a record replays only while that argument is pinned (equal on the first
        two calls, and checked unchanged before each replay); otherwise the signature runs eagerly."""
        for k, a in enumerate(self.inputs):
            if np.may_share_memory(array, a.data if isinstance(a, Tensor) else a):
                self.viewed.add(k)
                return array.copy()
        return array

    # -- the record ------------------------------------------------------------------
    def finish(self, result) -> _Record:
        if self.problem is not None:
            raise _Fallback(self.problem)
        returns = self._return_spec(result)
        return _Record(self, returns)

    def _return_spec(self, value):
        if isinstance(value, np.ndarray) and id(value) in self.input_index:
            return ("input", self.input_index[id(value)])
        if isinstance(value, Tensor):
            k = self.slot_of.get(id(value.data), self.slot_of.get(id(value)))
            if k is not None:
                return ("tensor", k)
            k = self.input_index.get(id(value))
            if k is not None:
                return ("input", k)
            if value._number < self.start:
                return ("object", value)
            raise _Fallback("the function returns a tensor made outside bpcore ops (bp.tensor(...) of computed values)")
        if id(value) in self.call_results:
            return ("call", self.call_results[id(value)])
        if id(value) in self.reads:
            tensor, how = self.reads.pop(id(value))
            k = self.slot_of.get(id(tensor.data), self.slot_of.get(id(tensor)))
            if k is None:
                raise _Fallback(f"{how}() of a tensor that no op made is returned")
            return ("read", k, how)
        if isinstance(value, tuple | list):
            return (type(value), [self._return_spec(v) for v in value])
        if isinstance(value, dict):
            return (dict, [(k, self._return_spec(v)) for k, v in value.items()])
        if isinstance(value, np.ndarray) and id(value) in self.slot_of:
            return ("array", self.slot_of[id(value)])
        return ("object", value)


_LOCAL = re.compile(r"\b[vsjgc]\d+\b")  # the replay's values, saved arrays, VJPs, gradients and call results
_TARGETS = re.compile(r"[vsjgc]\d+(, [vsjgc]\d+)*")


def _guard_line(same: str, what: str) -> str:
    """One check before the replay, as generated code: ``same`` must hold, else the call is traced again."""
    return f"            if not ({same}): raise _Stale  # {what}"


def _release_dead(body: list[str], returned: str) -> list[str]:
    """The replay's statements with ``del`` after the last use of each value, saved array and gradient (as
    eager frees a graph's arrays once nothing refers to them): the same calls on the same arrays, while later
    arrays reuse the memory of dead ones instead of new pages."""
    statements: list[list[str]] = []
    for line in "\n".join(body).splitlines():
        if statements and line.startswith(("     ", "    else")):
            statements[-1].append(line)  # inside a block: released after the whole statement
        else:
            statements.append([line])
    last: dict[str, int] = {}
    assigned: set[str] = set()
    for n, statement in enumerate(statements):
        target = statement[0].strip().split(" = ")[0]
        if _TARGETS.fullmatch(target):
            assigned.update(target.split(", "))
        for name in _LOCAL.findall("\n".join(statement)):  # (a name in a comment only keeps it longer)
            last[name] = n
    kept = set(_LOCAL.findall(returned))
    dead: dict[int, list[str]] = {}
    for name, n in last.items():
        if name in assigned and name not in kept:
            dead.setdefault(n, []).append(name)
    out, pending = [], []
    for n, statement in enumerate(statements):
        if pending and "(" in statement[0].split("#")[0]:  # released before the next call that may allocate
            out.append(f"    del {', '.join(sorted(pending, key=lambda v: (v[0], int(v[1:]))))}")
            pending = []
        out.extend(statement)
        pending += dead.get(n, [])
    return out  # (what is still pending goes with the frame)


def _check_reads(tracer: _Tracer) -> None:
    if tracer.reads:
        tensor, how = next(iter(tracer.reads.values()))
        raise _Fallback(f"{how}() reads a tensor's value inside the function (shape {tensor.shape}) and uses it other "
                        "than by returning it: Python may act on it, which the replay could not follow. "
                        "Return the tensor and call .item() outside")


# ----------------------------------------------------------------------------- the replay


_NAMES = {"value": "v", "input": "I", "leaf": "L", "constant": "C"}


class _Record:
    """The straight-line replay of one traced call, and the state it touches (to check it)."""

    def __init__(self, tracer: _Tracer, returns):
        _check_reads(tracer)
        self.namespace: dict = {"np": np, "_unbroadcast": unbroadcast, "_add_slice": add_slice_grad, "Tensor": Tensor}
        self._names: dict[int, str] = {}
        self._grad_known: dict[int, str] = {}  # id(leaf) -> "none" / "set" where the record shows it
        self._argument_checks: dict[int, list[str]] = {}  # argument k -> the guard lines checking its values
        self.leaves: list[Tensor] = []
        self.optimizers: list = []
        self.constant_arrays: list[tuple] = []  # (op name, array) for each array an op took that is frozen
        self.owners: list = []  # other objects whose recorded methods ran (a scheduler, a BatchNorm): their state
        self.op_names = tuple(primitive.name for primitive, *_ in tracer.ops)
        self.call_names = tuple(
            getattr(event[1], "__qualname__", "?") for event in tracer.events if event[0] == "call")
        self._tracer = tracer
        self.tensor_inputs = [isinstance(a, Tensor) for a in tracer.inputs]
        self.viewed_arguments = tuple(sorted(tracer.viewed))
        self.reads_after = tracer.function_state.reads()  # the values it reads, as it left them
        body = []
        for n, event in enumerate(tracer.events):
            if event[0] == "op":
                body.append(self._op_line(event[1]))
            elif event[0] == "backward":
                body.extend(self._backward_lines(event[1], event[2]))
            else:
                body.append(self._call_line(*event[1:], n))
        returned = self._return_code(returns)
        modes = [(m, m.training) for m, *_ in tracer.modules.values()]  # the mode the function left each module in
        lines = ["def replay(I, checked=True):", *self._guard_lines(), *_release_dead(body, returned)]
        if modes:
            lines.append("    if checked:  # each module in the mode the function left it in")
            for m, mode in modes:
                name = self._constant(m)
                lines.append(f"        if {name}.training is not {mode}: _set_mode({name}, 'training', {mode})")
        lines.append(f"    return {returned}")
        self.source = "\n".join(lines) + "\n"
        exec(self.source, self.namespace)
        self.replay = self.namespace["replay"]  # replay(I) checks first, replay(I, False) does not
        del self._tracer, self._names, self._grad_known

    def pin(self, values: list[tuple[int, np.ndarray]]) -> None:
        """Replay only while each argument ``k`` of ``values`` holds the array given (else: traced again).
        The checks of a pinned argument's values (class targets) go: those bytes passed them on both calls
        (a function that changes an argument in place, which would have checked other bytes, runs eagerly)."""
        if not values:
            return
        self.namespace.update(_Stale=_Stale)
        terms = []
        for k, array in values:  # (its shape and dtype are the signature's: its bytes tell the rest)
            name = f"P{k}"
            self.namespace[name] = array.tobytes()
            code = f"I[{k}].data" if self.tensor_inputs[k] else f"I[{k}]"
            terms.append(f"            if {code}.tobytes() != {name}: raise _Stale  # argument {k}, as on two calls")
        redundant = {line for k, _ in values for line in self._argument_checks.get(k, ())}
        lines = [line for line in self.source.splitlines() if line not in redundant]
        if "        try:" in lines:
            at = lines.index("        try:") + 1
        else:
            at = 2 if len(lines) > 1 and lines[1].startswith("    if checked:") else 1
            if at == 1:
                lines.insert(1, "    if checked:  # what the record took as given (else: traced again)")
                at = 2
            if lines[at].startswith("        if not (len(I)"):
                at += 1
            lines[at:at] = ["        try:", "        except Exception:", "            raise _Stale from None"]
            at += 1
        lines[at:at] = terms
        self.source = "\n".join(lines) + "\n"
        exec(self.source, self.namespace)
        self.replay = self.namespace["replay"]

    # -- what the record assumes about state outside the arguments -------------------------
    def _guard_lines(self) -> list[str]:
        """Code that raises ``_Stale`` (the call is traced again, eagerly) unless what the record took as given
        still holds: each module's mode, settings and parameters as it was called (the same objects), which
        parameters require grad, each optimizer's parameters, the values the function reads from its globals
        and closure, and that the class targets pass the checks eager makes. Written out as straight-line
        comparisons, as the replay is: this runs before every replay."""
        tracer = self._tracer
        self.namespace.update(_Stale=_Stale, _set_mode=object.__setattr__, _buffer_bytes=_buffer_bytes,
                              _fingerprint=_fingerprint, _max=np.maximum.reduce, _cell=_cell)
        terms = []
        for m, keys, values, read, (length, contents) in tracer.modules.values():
            same = [f"len(d := {self._constant(m, 'M')}.__dict__) == {length}"]
            same += [f"d[{k!r}] is {v if v is None or type(v) is bool else self._constant(v)}"
                     for k, v in zip(keys, values, strict=True)]
            if read:
                same.append(f"_buffer_bytes(d, {read!r}) == {self._constant(contents)}")
            terms.append((" and ".join(same), type(m).__name__))
        for p in self.leaves:  # (a replaced .data of another dtype or shape: the record's casts and sums differ)
            leaf, dtype = self._constant(p, "L"), self._constant(p.data.dtype, "D")
            terms.append((f"{'' if p.requires_grad else 'not '}{leaf}.requires_grad and (a := {leaf}.data).shape == "
                          f"{p.data.shape!r} and (a.dtype is {dtype} or a.dtype == {dtype})",
                          f"{p.data.dtype} {p.data.shape}{', requires grad' if p.requires_grad else ''}"))
        for o in self.optimizers:
            groups = f"{self._constant(o, 'O')}.param_groups"
            same = [f"len(G := {groups}) == {len(o.param_groups)}"]
            for i, group in enumerate(o.param_groups):
                same.append(f"len(P := G[{i}]['params']) == {len(group['params'])}")
                same += [f"P[{j}] is {self._constant(p)}" for j, p in enumerate(group["params"])]
            terms.append((" and ".join(same), f"{type(o).__name__}'s parameters"))
        scope = tracer.function_state.guard_terms(self._constant)
        if scope:
            terms.append((" and ".join(scope), "the globals and closure the function reads"))
        checks = [(k, self._check_term(k, check, expected)) for k, check, expected in tracer.checks]
        terms += [term for _, term in checks]
        signature = self._signature_terms() if tracer.signature is not None else []
        if not terms and not signature:
            return []
        lines = ["    if checked:  # what the record took as given (else: traced again)"]
        if signature:  # the arguments, as the quick key has them (else: another signature's replay, if any)
            lines.append(f"        if not ({' and '.join(signature)}): raise _OtherSignature")
        if not terms:
            return lines
        lines.append("        try:")
        lines += [_guard_line(same, what) for same, what in terms]
        for k, term in checks:  # (pin() drops them for an argument it pins: that array passed them already)
            self._argument_checks.setdefault(k, []).append(_guard_line(*term))
        lines.append("        except Exception:  # (an attribute deleted, bad targets: eager says what is wrong)")
        lines.append("            raise _Stale from None")
        return lines

    def _signature_terms(self) -> list[str]:
        """Conditions that hold when the arguments have the quick key this record was traced with: as many,
        each an ndarray (exactly) or a Tensor as then, of the same shape and dtype (and requires_grad), and
        grad mode as it was."""
        self.namespace.update(_OtherSignature=_OtherSignature, _ndarray=np.ndarray, _switches=SWITCHES)
        tracer = self._tracer
        terms = [f"len(I) == {len(tracer.inputs)}"]
        for k, (value, (tensor, requires_grad)) in enumerate(zip(tracer.inputs, tracer.signature, strict=True)):
            array = value.data if tensor else value
            dtype = self._constant(array.dtype, "D")
            if tensor:
                terms.append(f"isinstance(a := I[{k}], Tensor) and a.requires_grad == {requires_grad} and "
                             f"(a := a.data).shape == {array.shape!r}")
            else:
                terms.append(f"type(a := I[{k}]) is _ndarray and a.shape == {array.shape!r}")
            terms.append(f"(a.dtype is {dtype} or a.dtype == {dtype})")
        terms.append(f"_switches.grad_enabled == {tracer.grad_enabled}")
        return terms

    def _check_term(self, k: int, check, expected) -> tuple[str, str]:
        """A check of an argument (class targets) as a condition: the check's own call, or for targets that
        can only pass or raise, the one reduction that tells which (dtype and shape are the signature's)."""
        value = self._tracer.inputs[k]
        array = value.data if isinstance(value, Tensor) else value
        code = f"I[{k}].data" if isinstance(value, Tensor) else f"I[{k}]"
        classes = getattr(check, "classes", None)
        if classes is not None and array.dtype.kind in "iu" and (
                array.dtype.kind == "u" or classes <= 2 ** (8 * array.dtype.itemsize - 1)):
            if not array.size:
                return "True", "no class targets to check"
            if array.dtype.kind == "i":  # as unsigned: a negative target becomes at least 2^(bits-1) >= classes
                code = f"{code}.view({self._constant(np.dtype(array.dtype.str.replace('i', 'u')), 'D')})"
            return f"_max({code}) < {classes}", f"class targets in [0, {classes})"
        return f"{self._constant(check, 'K')}({code}) == {self._constant(expected)}", "a check of an argument"

    # -- code for each event -----------------------------------------------------
    def _constant(self, value, prefix: str = "C") -> str:
        name = self._names.get(id(value))
        if name is None:
            if prefix == "C" and isinstance(value, Module):
                prefix = "M"
            name = self._names[id(value)] = f"{prefix}{len(self._names)}"
            self.namespace[name] = value
            if prefix == "L":
                self.leaves.append(value)
        return name

    def _arg_code(self, spec) -> str:
        kind, what = spec
        if kind == "value":
            return f"v{what}"
        if kind == "input":
            return f"I[{what}].data" if isinstance(self._tracer.inputs[what], Tensor) else f"I[{what}]"
        if kind == "leaf":
            return f"{self._constant(what, 'L')}.data"
        if kind == "tuple":
            return "(" + "".join(self._arg_code(s) + ", " for s in what) + ")"
        if what is None or isinstance(what, bool | int | str) or (isinstance(what, float) and np.isfinite(what)):
            return repr(what)
        return self._constant(what)

    def _op_line(self, k: int) -> str:
        primitive, specs, setting_specs, _ = self._tracer.ops[k]
        forward = self._constant(primitive.forward, "F")
        args = [self._arg_code(s) for s in specs] + [f"{name}={self._arg_code(s)}" for name, s in setting_specs]
        for kind, what in (*specs, *(spec for _, spec in setting_specs)):
            if kind == "constant" and isinstance(what, np.ndarray):
                self.constant_arrays.append((primitive.name, what))
        kept = "j" if primitive.vjps is None else "s"  # its VJP closures, or the arrays its VJP functions read
        return f"    v{k}, {kept}{k} = {forward}({', '.join(args)})  # {primitive.name}"

    def _node_slot(self, node: Tensor) -> int | None:
        tracer = self._tracer
        return tracer.slot_of.get(id(node.data), tracer.slot_of.get(id(node)))

    def _leaf_code(self, node: Tensor) -> str:
        k = self._tracer.input_index.get(id(node))
        if k is not None:
            raise _Fallback("an argument tensor requires grad (its .grad would belong to the first call's tensor)")
        return self._constant(node, "L")

    def _backward_lines(self, root: Tensor, grad) -> list[str]:
        """The schedule run_backward follows, written out: same VJPs, same order, same sums."""
        lines = []
        names = itertools.count()
        root_slot = self._node_slot(root)
        if root_slot is None:
            raise _Fallback("backward() from a tensor that no op in the function made")
        if isinstance(grad, np.ndarray) and grad.shape == root.shape and grad.dtype == root.dtype and \
                np.all(grad == 1) and grad.size == 1:  # backward() of a single number: dL/dL = 1
            dtype = self._constant(grad.dtype, "D")
            seed = f"np.ones_like(v{root_slot})" if grad.ndim else f"np.array(1, dtype={dtype})"
        else:
            seed = f"np.asarray({self._arg_code(self._tracer._spec(grad))}, dtype=v{root_slot}.dtype)"
        first = f"g{next(names)}"
        lines.append(f"    {first} = {seed}  # backward from {root.op}")
        grads: dict[Tensor, str] = {root: first}
        summed: set[Tensor] = set()
        fresh: set[str] = set()  # gradient variables holding an array nothing else refers to
        for node in reversed(topological_order(root)):
            g = grads.pop(node, None)
            if g is None:
                continue
            if node._hooks:
                raise _Fallback(f"a hook is registered on a tensor of shape {node.shape} (hooks run Python on "
                                "gradients, which replay skips)")
            if node.op is None:  # a leaf: its own copy the first time, then summed into (as eager)
                leaf, dtype = self._leaf_code(node), self._constant(node.data.dtype, "D")
                known = self._grad_known.get(id(node))
                first = g if g in fresh else f"np.array({g}, dtype={dtype}, copy=True)"  # a fresh array is kept as is
                if known is None:
                    lines.append(f"    if {leaf}.grad is None: {leaf}.grad = {first}")
                    lines.append(f"    else: {leaf}.grad += {g}")
                elif known == "none":
                    lines.append(f"    {leaf}.grad = {first}")
                else:
                    lines.append(f"    {leaf}.grad += {g}")
                # "set": an array this replay made (the traced shape); "added": summed into a .grad it found there
                self._grad_known[id(node)] = "set" if known in ("none", "set") else "added"
                continue
            if node._retain:
                raise _Fallback("retain_grad() on an intermediate tensor (replay makes no tensors to keep it on)")
            k = self._node_slot(node)
            if k is None:
                raise _Fallback(f"backward through '{node.op}', which ran outside the function")
            for index, x, rule, saved in vjp_edges(node):
                d = f"g{next(names)}"
                if saved is None:  # VJP closures: the forward returned them
                    lines.append(f"    {d} = j{k}[{index}]({g})  # d {node.op} / d input {index}")
                else:  # the op's VJP functions, on what the forward saved
                    lines.append(f"    {d} = {self._constant(rule, 'R')}({g}, *s{k})  # d {node.op} / d input {index}")
                returned = self._tracer.vjp_results.get((id(node), index))
                if returned is None:
                    raise _Fallback(f"backward through '{node.op}' was not watched while tracing")
                if returned[0] == "slice":  # a SliceGrad: added into the input's gradient in place
                    shape, dtype = x.data.shape, self._constant(x.data.dtype, "D")
                    previous = grads.get(x)
                    total = f"g{next(names)}"
                    owned = x in summed
                    lines.append(f"    {total} = _add_slice({previous}, {d}, {shape!r}, {dtype}, {owned})")
                    grads[x] = total
                    summed.add(x)
                    fresh.add(total)
                    continue
                if returned[2]:
                    fresh.add(d)
                if returned[0] != x.data.shape:  # a broadcast input: sum the gradient back to its shape
                    lines.append(f"    {d} = _unbroadcast({d}, {x.data.shape!r})")
                    fresh.discard(d)  # (the sum may keep a view)
                if returned[1] != x.data.dtype:
                    lines.append(f"    {d} = {d}.astype({self._constant(x.data.dtype, 'D')})")
                    fresh.add(d)
                previous = grads.get(x)
                if previous is None:
                    grads[x] = d
                elif x in summed:
                    lines.append(f"    {previous} += {d}")
                else:
                    total = f"g{next(names)}"
                    lines.append(f"    {total} = {previous} + {d}")
                    grads[x] = total
                    summed.add(x)
                    if isinstance(x.data, np.ndarray) and x.data.ndim:  # (a 0-d sum is a numpy scalar)
                        fresh.add(total)
        return lines

    def _call_line(self, method, args, kwargs, n: int) -> str:
        owner = args[0] if args else None
        if owner is not None and hasattr(owner, "param_groups") and owner not in self.optimizers:
            self.optimizers.append(owner)
        if owner is not None and hasattr(owner, "parameters") and callable(owner.parameters):
            for p in owner.parameters():
                self._constant(p, "L")
        if hasattr(owner, "param_groups"):
            for group in owner.param_groups:
                for p in group["params"]:
                    self._constant(p, "L")
        if owner is not None and not hasattr(owner, "param_groups") and hasattr(owner, "__dict__") and \
                not any(owner is o for o in self.owners):
            self.owners.append(owner)
        if method is _OPTIMIZER_STEP and len(args) == 1 and not kwargs:
            return self._step_lines(owner)
        if method is _SGD_STEP and len(args) == 1 and not kwargs and _plain_sgd(owner):
            return self._sgd_lines(owner, n)
        if method in _ZERO_GRADS and len(args) == 1 and not kwargs:
            params = [p for g in owner.param_groups for p in g["params"]] if hasattr(owner, "param_groups") \
                else list(owner.parameters())
            lines = [f"    {self._constant(p, 'L')}.grad = None" for p in params] or ["    pass"]
            self._grad_known.update((id(p), "none") for p in params)
            return "\n".join(lines) + f"  # {method.__qualname__}"
        self._grad_known.clear()  # a call we do not know may change any gradient
        fn = self._constant(method, "M")
        parts = [self._arg_code(self._tracer._spec(a)) for a in args]
        parts += [f"{name}={self._arg_code(self._tracer._spec(v))}" for name, v in kwargs.items()]
        return f"    c{n} = {fn}({', '.join(parts)})  # {getattr(method, '__qualname__', method)}"

    def _step_lines(self, optimizer) -> str:
        """Optimizer.step written out: each parameter's update (the optimizer's own ``update``) in order."""
        o = self._constant(optimizer, "O")
        update = self._constant(optimizer.update, "U")
        self.namespace.update(_check_grad=_check_grad)
        lines = [f"    {o}_state = {o}.state  # {type(optimizer).__name__}.step"]
        for i, group in enumerate(optimizer.param_groups):
            lines.append(f"    {o}_group = {o}.param_groups[{i}]")
            for index, p in enumerate(group["params"]):
                leaf = self._constant(p, "L")
                state = f"{o}_state.setdefault({id(p)}, {{}})"
                known = self._grad_known.get(id(p))
                if known == "set":  # a gradient this replay made: of the traced shape, so the step's check passes
                    lines.append(f"    {update}({leaf}, {leaf}.grad, {state}, {o}_group)")
                elif known != "none":  # a gradient set or kept outside the replay: the step checks it first
                    lines.append(f"    if {leaf}.grad is not None:")
                    lines.append(f"        _check_grad({leaf}, {index}, {type(optimizer).__name__!r})")
                    lines.append(f"        {update}({leaf}, {leaf}.grad, {state}, {o}_group)")
        return "\n".join(lines)

    def _sgd_lines(self, optimizer, n: int) -> str:
        """SGD.step written out: in its plain case (as at trace time, checked on each call) each parameter's
        p <- p - lr g in order, with the same check of the gradient; in any other, the call of SGD.step."""
        o = self._constant(optimizer, "O")
        self.namespace.update(_ndarray=np.ndarray, _check_grad=_check_grad, _sgd_update=SGD.update)
        lines = [f"    G = {o}.param_groups  # SGD.step, its plain case written out: p <- p - lr g",
                 f"    if len(G) == 1 and not (H := G[0])['momentum'] and not H['weight_decay'] and "
                 f"type({o}).update is _sgd_update:",
                 "        lr = H['lr']"]
        name = type(optimizer).__name__
        for index, p in enumerate(optimizer.param_groups[0]["params"]):
            known = self._grad_known.get(id(p))
            if known == "none":
                continue
            leaf = self._constant(p, "L")
            if known == "set":  # a gradient this replay wrote: the traced shape, which the guard checked .data has
                lines.append(f"        {leaf}.data -= lr * {leaf}.grad")  # (so SGD's check of it cannot fire)
                continue
            lines.append(f"        if (g := {leaf}.grad) is not None:")
            lines.append(f"            if type(g) is not _ndarray or g.shape != {leaf}.data.shape: "
                         f"_check_grad({leaf}, {index}, {name!r})")
            lines.append(f"            {leaf}.data -= lr * g")
        lines.append("    else:")
        lines.append(f"        {self._constant(_SGD_STEP, 'M')}({o})  # SGD.step")
        return "\n".join(lines)

    def _return_code(self, spec) -> str:
        kind = spec[0]
        if kind == "tensor":
            return f"Tensor(v{spec[1]})"
        if kind == "input":
            return f"I[{spec[1]}]"
        if kind == "array":
            return f"v{spec[1]}"
        if kind == "call":
            return f"c{spec[1]}"
        if kind == "read":
            _, k, how = spec
            return {"item": f"v{k}.item()", "numpy": f"v{k}", "tolist": f"v{k}.tolist()"}[how]
        if kind == "object":
            value = spec[1]
            return repr(value) if value is None or isinstance(value, bool | int | str) else self._constant(value)
        if kind is dict:
            return "{" + ", ".join(f"{self._constant(k)}: {self._return_code(s)}" for k, s in spec[1]) + "}"
        items = "".join(self._return_code(s) + ", " for s in spec[1])
        return f"({items})" if kind is tuple else f"[{items}]" if kind is list else f"{self._constant(kind)}([{items}])"

    # -- checking the replay against eager (second call) -------------------------------
    def check_same_ops(self, other: _Record) -> None:
        if (other.op_names, other.call_names, [id(p) for p in other.leaves]) != (
                self.op_names, self.call_names, [id(p) for p in self.leaves]):
            raise _Fallback("the second call ran different ops than the first (Python control flow that depends "
                            "on values, or on state outside the arguments)")
        if len(self.constant_arrays) != len(other.constant_arrays):
            raise _Fallback("the second call passed its ops other arrays than the first (an argument on one call, "
                            "an array made inside the function on the other)")
        for (name, first), (_, second) in zip(self.constant_arrays, other.constant_arrays, strict=True):
            if not _same(first, second):
                raise _Fallback(
                    f"an array that '{name}' reads, which is not an argument of the function (shape {first.shape}), "
                    "changed between the first two calls, and the replay would keep the first one: pass it as an "
                    "argument (step(x, y) rather than next(batches) inside the step), or compute it with bpcore ops")

    def snapshot(self):
        leaves = [(p, p.data.copy(), None if p.grad is None else np.array(p.grad, copy=True)) for p in self.leaves]
        optimizers = [(o, copy.deepcopy(o.state), [{k: v for k, v in g.items() if k != "params"}
                                                  for g in o.param_groups]) for o in self.optimizers]
        owners = [(o, _state_of(o)) for o in self.owners]
        return leaves, optimizers, owners

    def restore(self, snapshot) -> None:
        leaves, optimizers, owners = snapshot
        for o, state in owners:
            vars(o).update(_state_of(state))
        for p, data, grad in leaves:
            if p.data.shape == data.shape and p.data.dtype == data.dtype:
                if not _same(p.data, data):  # (only what changed: a frozen parameter's array may be read-only)
                    p.data[...] = data
            else:
                p.data = data.copy()
            p.grad = None if grad is None else grad.copy()
        for o, state, groups in optimizers:
            o.state.clear()
            o.state.update(copy.deepcopy(state))
            for group, saved in zip(o.param_groups, groups, strict=True):
                group.update(saved)

    def compare(self, eager_state, replayed_result, eager_result) -> str | None:
        """None when the replay left every parameter, gradient and optimizer state bit for bit as eager did."""
        now = self.snapshot()
        for (p, data, grad), (_, eager_data, eager_grad) in zip(now[0], eager_state[0], strict=True):
            if not _same(data, eager_data):
                return (f"the replay changed a parameter of shape {p.shape} differently from eager (something outside "
                        "bpcore ops, backward() and the optimizer changes it)")
            if (grad is None) != (eager_grad is None) or (grad is not None and not _same(grad, eager_grad)):
                return (f"the replay left a different .grad on a tensor of shape {p.shape} than eager (a gradient "
                        "changed by hand, clipping, or an array computed outside bpcore ops)")
        for (o, state, groups), (_, eager_opt_state, eager_groups) in zip(now[1], eager_state[1], strict=True):
            if not _same_tree(state, eager_opt_state) or groups != eager_groups:
                return f"the replay left {type(o).__name__}'s state different from eager"
        for (o, state), (_, eager_owner_state) in zip(now[2], eager_state[2], strict=True):
            if not _same_tree(state, eager_owner_state):
                return f"the replay left {type(o).__name__}'s state different from eager"
        if not _same_tree(replayed_result, eager_result):
            return ("the replay returned different values than eager (an array computed from the arguments or from "
                    "random numbers outside bpcore ops is frozen in the record)")
        return None


_PLAIN = (bool, int, float, complex, str, type(None))
_MISSING = object()
_SMALL = (dict, list, tuple)
_LIBRARIES = ("bpcore", "numpy")  # their functions read no learner state that the record could miss


def _code_names(fn) -> set[str]:
    """The attribute and global names, and the strings, a function's code (and the code defined inside it) uses."""
    names, codes = set(), [getattr(fn, "__code__", None)]
    while codes:
        code = codes.pop()
        if code is not None:
            names.update(code.co_names)
            names.update(c for c in code.co_consts if isinstance(c, str))
            codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return names


def _learners_object(value) -> bool:
    """An object of the learner's own class, with attributes (not a module, an optimizer or a scheduler:
    checked, or replayed by call, as they are; not a class, function or Python module)."""
    return not isinstance(value, type | types.ModuleType | types.FunctionType) and \
        isinstance(getattr(value, "__dict__", None), dict) and _learners_class(type(value))


def _learners_class(cls: type) -> bool:
    return not any((getattr(k, "__module__", None) or "").split(".")[0] in (*_LIBRARIES, "builtins")
                   for k in cls.__mro__[:-1])


def _fingerprint(value, depth: int = 1):
    """Plain values by value; small dicts, lists and tuples of them by their items, bigger ones by their length;
    anything else by identity."""
    if type(value) in _PLAIN:
        return (type(value), value)
    if depth and type(value) in (dict, list, tuple):
        if len(value) > 64:
            return (type(value), id(value), len(value))
        items = value.items() if type(value) is dict else enumerate(value)
        return (type(value), id(value), tuple((k, _fingerprint(v, depth - 1)) for k, v in items))
    return id(value)


def _module_keys(module) -> tuple:
    """The attributes of a module that the record depends on: its mode, settings (Dropout's p,
    BatchNorm's eps), parameters, sub-modules and, in eval mode, buffers; replay compares them by
    identity (eval-mode buffers by content too). In training mode BatchNorm replaces its buffers on every
    call through a recorded method, and reads them only there, so they are left out."""
    skip = module._buffers if module.training else ()
    keys = [k for k in module.__dict__ if k not in skip]
    return (*keys, *(() if "training" in keys else ("training",)))


def _buffer_bytes(attributes: dict, names: tuple) -> tuple:
    """The contents of a module's buffers (a changed running mean in eval mode, even changed in place)."""
    contents = []
    for name in names:
        value = attributes[name]
        contents.append(value.tobytes() if isinstance(value, np.ndarray) else id(value))
    return tuple(contents)


class _FunctionState:
    """The globals and closure variables the traced function names, as fingerprints; and, a few calls deep,
    those of the learner's own functions it names (a loss helper reading a global)."""

    def __init__(self, fn, arguments: tuple = ()):
        self.code_names: set[str] = set()  # the names and strings the visited code uses
        self.cells: list = []
        self.names: list[tuple[dict, str]] = []  # (the globals of a function, a name it reads there)
        self._named: set[tuple[int, str]] = set()
        self.objects: dict[int, tuple] = {}  # id -> (a learner's object it reads, attribute names, their values,
        # whether those are all its attributes: else only those the step's code names)
        if isinstance(fn, types.MethodType):  # trainer.train_step: what it reads through self
            self._object(fn.__self__, fn.__func__, set(), 0)
        self._visit(getattr(fn, "__func__", fn), set(), depth=3)
        self.unguarded: str | None = None  # an object given as an argument whose attributes cannot be checked
        for value in arguments:  # a trainer or config given as an argument: the attributes the step can reach by
            # name (its code, its helpers', the methods and properties of it they name; all, given getattr or vars)
            if type(value) in _PLAIN or isinstance(value, np.ndarray | Tensor | tuple | list | dict):
                continue
            if not isinstance(getattr(value, "__dict__", None), dict) and _learners_class(type(value)):
                self.unguarded = type(value).__name__
            elif _learners_object(value):
                names = self._method_names(value, self.code_names | _code_names(getattr(fn, "__func__", fn)))
                whole = not names.isdisjoint(("getattr", "vars", "__dict__", "hasattr"))
                read = list(vars(value)) if whole else [k for k in vars(value) if k in names]
                self.objects.setdefault(id(value), (value, tuple(read), tuple(vars(value)[k] for k in read), whole))
        self.start = self.now()
        self.start_contents = self.contents()
        self.start_reads = self.reads()

    def reads(self) -> list:
        """The values read, as now: globals and closure values, and the guarded attributes of objects."""
        return [self.now(), *((id(o), tuple((k, _fingerprint(o.__dict__.get(k, _MISSING), 0)) for k in keys))
                              for o, keys, _, _ in self.objects.values())]

    def contents(self) -> list:
        """What a call may change in place in the Python state read: the lengths of lists, dicts and sets
        and the items of small ones, the attributes of the learner's objects and their lengths."""
        values = [_cell(c) for c in self.cells] + [scope.get(name) for scope, name in self.names]
        names = []
        for value, *_ in self.objects.values():
            names.append(tuple(value.__dict__))
            values += value.__dict__.values()
        return names + [(_fingerprint(v), len(v) if type(v) in (list, dict, set, bytearray) else None)
                        for v in values]

    def changed(self) -> bool:
        """The call changed Python state it reads (appended to a list, counted, set an attribute)."""
        return self.now() != self.start or self.contents() != self.start_contents

    def _object(self, value, fn, seen: set, depth: int) -> None:
        """A learner's own object (a trainer, a config) that the function names: its attributes are checked
        by identity before each replay (``self.opt`` replaced, ``self.scale = 3.0``), as a module's are; the
        methods of it the function names are visited too."""
        if id(value) in self.objects or not _learners_object(value):
            return
        attributes = value.__dict__
        self.objects[id(value)] = (value, tuple(attributes), tuple(attributes.values()), True)
        if fn is not None:
            self._visit(fn, seen, depth)

    def _method_names(self, value, names: set, depth: int = 3) -> set:
        """``names`` and the names used by the methods and properties of ``value``'s class among them, a few
        calls deep (trainer.loss(x) reading self.scale); those methods' globals are visited too."""
        names, seen = set(names), set()
        for _ in range(depth):
            more = set()
            for name in names:
                method = getattr(type(value), name, None)
                method = method.fget if isinstance(method, property) else method
                if isinstance(method, types.FunctionType) and id(method) not in seen:
                    seen.add(id(method))
                    more |= _code_names(method)
                    self._visit(method, set(), 1)
            if more <= names:
                break
            names |= more
        return names

    def _methods(self, value, code, seen: set, depth: int) -> None:
        """``value`` read by a function of ``code``: a learner's object is checked, with the methods named."""
        if type(value) in _PLAIN or isinstance(value, Module | types.FunctionType | types.ModuleType | type):
            return
        self._object(value, None, seen, depth)
        if id(value) in self.objects and depth:
            for name in code.co_names:
                method = getattr(type(value), name, None)
                if isinstance(method, types.FunctionType):
                    self._visit(method, seen, depth - 1)

    def _visit(self, fn, seen: set, depth: int) -> None:
        code = getattr(fn, "__code__", None)
        if code is None or id(code) in seen or (getattr(fn, "__module__", None) or "").split(".")[0] in _LIBRARIES:
            return
        seen.add(id(code))
        self.cells.extend(fn.__closure__ or ())
        scope = fn.__globals__
        codes = [code]
        while codes:  # the function and the functions defined inside it (made anew each call: their names only)
            c = codes.pop()
            codes.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
            self.code_names.update(c.co_names)
            self.code_names.update(k for k in c.co_consts if isinstance(k, str))
            for name in c.co_names:
                if name in scope and (id(scope), name) not in self._named:
                    self._named.add((id(scope), name))
                    self.names.append((scope, name))
                    if depth and isinstance(scope[name], types.FunctionType):
                        self._visit(scope[name], seen, depth - 1)
                    self._methods(scope[name], code, seen, depth)
        for cell in fn.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if depth and isinstance(value, types.FunctionType):
                self._visit(value, seen, depth - 1)
            self._methods(value, code, seen, depth)

    def guard_terms(self, constant: Callable) -> list[str]:
        """Conditions, in code, that hold while each value read is as the traced call left it (the second
        call's check starts from there, or the record starts again); ``constant(value)`` names a value."""
        terms = []
        sources = [(f"{constant(c, 'K')}.cell_contents", c.cell_contents) if _filled(c) else
                   (f"_cell({constant(c, 'K')})", None) for c in self.cells]
        sources += [(f"{constant(scope, 'S')}[{name!r}]", scope.get(name)) for scope, name in self.names]
        for value, keys, _, whole in self.objects.values():  # (as the traced call left them: the second call
            # starts from there, or traces anew)
            if not all(k in value.__dict__ for k in keys):
                terms.append("False")  # an attribute deleted during the call: never replay this record
                continue
            same = [f"len(d := {constant(value)}.__dict__) == {len(keys)}" if whole else f"(d := {constant(value)}"
                    ".__dict__)"]
            for k in keys:  # plain values by value (a setting set again, equal); for an object given as an argument,
                v = value.__dict__[k]  # the small lists and dicts the step names by their items (tr.scale[0] = 0.5)
                if type(v) in _PLAIN:
                    same.append(f"type(x := d[{k!r}]) is {constant(type(v))} and (x is {constant(v)} or x == "
                                f"{constant(v)})")
                elif type(v) in _SMALL and not whole:
                    same.append(f"_fingerprint(d[{k!r}]) == {constant(_fingerprint(v))}")
                else:
                    same.append(f"d[{k!r}] is {constant(v)}")
            terms.append(" and ".join(same))
        for (code, value), start in zip(sources, self.now(), strict=True):
            if type(start) is int:  # an object, by identity
                terms.append(f"{code} is {constant(value)}" if id(value) == start else f"id({code}) == {start}")
            elif len(start) == 2 and start[0] in _PLAIN:  # a plain value: the same type, an equal value
                kind, plain = constant(start[0]), constant(start[1])
                terms.append(f"type(x := {code}) is {kind} and (x is {plain} or x == {plain})")
            else:  # a small dict, list or tuple
                terms.append(f"_fingerprint({code}) == {constant(start)}")
        return terms

    def now(self) -> list:
        state = []
        for cell in self.cells:
            try:
                v = cell.cell_contents
            except ValueError:  # a cell not yet filled
                v = None
            state.append((type(v), v) if type(v) in _PLAIN else _fingerprint(v) if type(v) in _SMALL else id(v))
        for scope, name in self.names:
            v = scope.get(name)
            state.append((type(v), v) if type(v) in _PLAIN else _fingerprint(v) if type(v) in _SMALL else id(v))
        return state


def _filled(cell) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:
        return False
    return True


def _cell(cell):
    """A closure cell's value, None while it is empty (as ``_FunctionState.now`` reads it)."""
    try:
        return cell.cell_contents
    except ValueError:
        return None


def _state_of(owner) -> dict:
    """A copy of an object's attributes that its recorded methods may change (arrays copied, numbers kept)."""
    items = owner.items() if isinstance(owner, dict) else vars(owner).items()
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in items
            if isinstance(v, np.ndarray | np.generic | bool | int | float | str) or v is None}


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _same_tree(a, b) -> bool:
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return isinstance(a, Tensor) and isinstance(b, Tensor) and _same(a.data, b.data)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_tree(a[k], b[k]) for k in a)
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return type(a) is type(b) and len(a) == len(b) and all(_same_tree(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray | np.generic | float | int) and isinstance(b, np.ndarray | np.generic | float | int):
        return type(a) is type(b) and _same(a, b)
    return a is b or a == b


_OPTIMIZER_STEP = Optimizer.step.__wrapped__
_SGD_STEP = SGD.step.__wrapped__


def _plain_sgd(optimizer) -> bool:
    """The case SGD.step runs in one loop of p <- p - lr g (the generated replay writes that loop out)."""
    groups = optimizer.param_groups
    return (len(groups) == 1 and not groups[0]["momentum"] and not groups[0]["weight_decay"]
            and type(optimizer).update is SGD.update)
_ZERO_GRADS = (Optimizer.zero_grad.__wrapped__, Module.zero_grad.__wrapped__)
