"""Module and Parameter: how layers own their weights, as in PyTorch.

A ``Module`` is a callable with named parameters and named sub-modules. Assigning a
:class:`Parameter` or a ``Module`` to an attribute registers it, so ``parameters()`` finds every
weight of a model however deeply it is nested, under PyTorch's dotted names (``0.weight``,
``encoder.fc.bias``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import numpy as np

from bpcore.tensor import SWITCHES, Tensor, replayed


class Parameter(Tensor):
    """A tensor that a module owns and trains: it always requires grad."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        data = data.data if isinstance(data, Tensor) else data
        array = np.array(data, dtype=data.dtype if isinstance(data, np.ndarray) else np.float64)
        super().__init__(array, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("tensor") :]


class Module:
    """Base class of every layer and model.

    Subclasses set parameters and sub-modules as attributes in ``__init__`` and compute in
    ``forward``. Calling the module calls ``forward``.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration --------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() before setting attributes")
        if name in self._parameters and value is not None and not isinstance(value, Parameter):
            raise TypeError(
                f"cannot assign a {type(value).__name__} to parameter '{name}' of {type(self).__name__}: "
                f"wrap it in bp.nn.Parameter(...), or change the values in place with .data"
            )
        if isinstance(value, Parameter | Module) or name not in self._buffers:
            for registry in (self._parameters, self._modules, self._buffers):
                registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, array: np.ndarray) -> None:
        """State that is saved with the module but not trained (BatchNorm's running statistics)."""
        self._buffers[name] = True
        object.__setattr__(self, name, array)

    def __delattr__(self, name):
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        object.__delattr__(self, name)

    # -- traversal -------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        for prefix, module in self.named_modules():
            for name, param in module._parameters.items():
                if id(param) in seen:  # a shared parameter is listed (and updated) once
                    continue
                seen.add(id(param))
                yield (f"{prefix}.{name}" if prefix else name), param

    def parameters(self) -> Iterator[Parameter]:
        for _, param in self.named_parameters():
            yield param

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    # -- state -------------------------------------------------------------------
    @replayed
    def zero_grad(self) -> None:
        """Forget the gradients of the last backward pass (they would otherwise accumulate)."""
        for param in self.parameters():
            param.grad = None

    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def to(self, dtype) -> Module:
        """Cast every parameter and buffer to ``dtype`` in place (gradients are dropped)."""
        dtype = np.dtype(dtype)
        for module in self.modules():
            for param in module._parameters.values():
                param.data = param.data.astype(dtype)
                param.grad = None
            for name in module._buffers:
                value = getattr(module, name)
                if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
                    object.__setattr__(module, name, value.astype(dtype))
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, by dotted name."""
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        for prefix, module in self.named_modules():
            for name in module._buffers:
                value = getattr(module, name)
                state[f"{prefix}.{name}" if prefix else name] = np.array(value, copy=True)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        own = self.state_dict()
        missing, unexpected = own.keys() - state.keys(), state.keys() - own.keys()
        if missing or unexpected:
            raise KeyError(f"load_state_dict: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
        params = dict(self.named_parameters())
        for name, value in state.items():
            if np.shape(value) != np.shape(own[name]):
                raise ValueError(f"load_state_dict: '{name}' has shape {np.shape(value)}, expected {own[name].shape}")
            if name in params:
                params[name].data[...] = value
            else:
                prefix, _, attr = name.rpartition(".")
                module = dict(self.named_modules())[prefix]
                object.__setattr__(module, attr, np.array(value, dtype=own[name].dtype, copy=True))

    # -- calling -------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        if (
            args
            and isinstance(args[0], list | tuple)
            and type(self).__module__.startswith("bpcore.nn")
            and not getattr(self, "takes_lists", False)
        ):  # bpcore's own layers take tensors, as PyTorch's do (a learner's own module may take anything)
            raise TypeError(
                f"{type(self).__name__}: the input must be a Tensor, not {type(args[0]).__name__}; "
                "make one with bp.tensor(...)"
            )
        if SWITCHES.tracer is not None:  # bp.compile notes the module's mode and parameters as the call saw them
            SWITCHES.tracer.module(self)
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        lines.append(")")
        return "\n".join(lines)
