"""Pictures of the computation graph: what ``backward()`` walks.

Every tensor is one node. Leaves (tensors you made yourself: blue when they require grad, grey
for data) are on the left; every op result sits to the right of all of its inputs, and an arrow
runs from each input to the op that read it. The picture is read twice:

* forward, left to right: values flow along the arrows; each node shows its value (when it has
  at most four numbers) or its shape;
* backward, right to left: after ``loss.backward()`` gradients travel against the arrows, and
  every node shows the gradient of the loss with respect to it (``grad 0.25``, or ``grad norm 1.3``
  for big tensors), intermediate ones included. A tensor with two outgoing arrows receives two
  gradients, and they are added.

Backward keeps ``.grad`` only on leaves (and on tensors that called ``retain_grad()``), as PyTorch
does, so the intermediate gradients are computed again here: :func:`node_gradients` runs the
recorded VJPs once more from the seed the last ``root.backward()`` used, writing no ``.grad``.

:func:`to_dot` writes Graphviz text (paste it into any Graphviz viewer), :func:`layout` places
the nodes for a picture (testable without a display), and :func:`graph_bytes` counts the memory the
graph holds for backward. The picture itself is drawn with matplotlib by ``bp.draw_graph``
(:func:`bpcore.plots.draw_graph`), so the engine never imports a plotting library.
Node ids ``n0, n1, ...`` number the tensors in topological order (inputs first) everywhere.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from bpcore.tensor import Tensor, backward_seed, changed_since, topological_order, unbroadcast, vjp_edges

SMALL = 4  # tensors with at most this many numbers show them; bigger ones show a shape or a norm
TITLE_CHARS = 24  # longer op titles are cut so boxes stay narrow
COLOURS = {"parameter": "#cfe2f3", "constant": "#e6e6e6", "op": "#fde3bd"}


class NodePlace(NamedTuple):
    """Where :func:`layout` puts one node: layer (0 = leaves), slot in the layer (0 = top), text."""

    depth: int
    position: int
    label: str


# ----------------------------------------------------------------------------- collecting and labelling


def graph_nodes(root: Tensor) -> list[Tensor]:
    """Every tensor ``root`` was computed from (itself included, input data too), inputs first.

    Node ``n{i}`` is entry ``i`` of this list.
    """
    return topological_order(root, every_tensor=True)


def _checked_nodes(root: Tensor, max_nodes: int) -> list[Tensor]:
    nodes = graph_nodes(root)
    if len(nodes) > max_nodes:
        raise ValueError(
            f"this graph has {len(nodes)} nodes, more than max_nodes={max_nodes} that still make a "
            "readable picture; draw a smaller example (fewer layers, steps or ops), or raise max_nodes"
        )
    return nodes


def node_gradients(root: Tensor) -> dict[Tensor, np.ndarray]:
    """dL/d(node) for every tensor the last ``root.backward()`` sent a gradient to, intermediates included.

    A second backward pass over the recorded graph, from the seed that ``root.backward()`` started
    from, that stores each gradient in the returned dict and never in ``.grad`` (a non-leaf's
    ``.grad`` stays None unless it called ``retain_grad()``). Hooks are not run again: they may
    record or print, and drawing must not. Returns ``{}`` when no backward ran from ``root``, or
    when a value the VJPs read was changed in place since (the gradients would be wrong).
    """
    seed = backward_seed(root)
    if seed is None:
        return {}
    order = topological_order(root)  # the tensors backward visits, inputs first
    edges = {node: vjp_edges(node) for node in order}
    if any(edges[node] and any(changed_since(x.data, node._epoch) for x in (node, *node.parents)) for node in order):
        return {}
    grads: dict[Tensor, np.ndarray] = {root: seed}
    with np.errstate(all="ignore"):  # backward already warned about any overflow once
        for node in reversed(order):  # every tensor made from a node comes before it: its gradient is complete
            g = grads.get(node)
            if g is None:
                continue
            for _, x, rule, saved in edges[node]:
                gx = rule(g) if saved is None else rule(g, *saved)
                if gx.shape != x.data.shape:
                    gx = unbroadcast(gx, x.data.shape)
                if gx.dtype != x.data.dtype:
                    gx = gx.astype(x.data.dtype)
                grads[x] = grads[x] + gx if x in grads else gx
    return grads


def _format(value) -> str:
    """Short text for a number, a small array (``[1, 2.5]``), a big one (``<3x4 array>``) or a setting."""
    if isinstance(value, np.ndarray | np.generic | float):
        value = np.asarray(value)
        if value.size > SMALL:
            return "<" + "x".join(map(str, value.shape)) + " array>"
        if value.ndim == 0:
            return f"{value.item():.4g}"
        return "[" + ", ".join(_format(row) for row in value) + "]"  # a matrix becomes nested lists
    return str(value)


def _title(t: Tensor) -> str:
    """A leaf's name, or the op with constants (``mul(·, 2)``, · a tensor) and settings (``sum(axis=1)``)."""
    if t.op is None:
        title = t.name or ("leaf" if t.requires_grad else "constant")
    else:
        has_constants = any(not isinstance(x, Tensor) for x in t.inputs)
        arguments = ["·" if isinstance(x, Tensor) else _format(x) for x in t.inputs] if has_constants else []
        # settings left at "off" (axis=None, keepdims=False) say nothing, so they are left out
        for key, value in (t._static or {}).items():
            if value is not None and value is not False:
                arguments.append(f"{key}={_format(value)}")
        call = f"{t.op}({', '.join(arguments)})" if arguments else t.op
        if len(call) > TITLE_CHARS:  # index arrays and the like: say there are arguments, not what they are
            call = f"{t.op}(…)"
        title = f"{t.name}: {call}" if t.name else call
    return title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…"


def _gradient(t: Tensor, grads: dict[Tensor, np.ndarray]) -> np.ndarray | None:
    """What a box shows as the gradient: ``.grad`` where backward kept one (what the learner reads from
    a leaf), else the gradient :func:`node_gradients` computed again (None if none reached ``t``)."""
    return t.grad if t.grad is not None else grads.get(t)


def _label_parts(
    t: Tensor, show_values: bool, grads: dict[Tensor, np.ndarray]
) -> tuple[str, str, str | None, str | None]:
    """(title, shape, data or None, grad or None): data for small tensors, grad once backward reached ``t``."""
    shape = "scalar" if t.ndim == 0 else f"shape {t.shape}"
    data = f"data {_format(t.data)}" if show_values and t.size <= SMALL else None
    grad = None
    if show_values and (g := _gradient(t, grads)) is not None:
        g = np.asarray(g)
        # a big gradient does not fit in a box; its norm still shows whether it vanished or exploded
        grad = f"grad {_format(g)}" if g.size <= SMALL else f"grad norm {np.linalg.norm(g):.4g}"
    return _title(t), shape, data, grad


def _colour(t: Tensor) -> str:
    if t.op is not None:
        return COLOURS["op"]
    return COLOURS["parameter" if t.requires_grad else "constant"]


# ----------------------------------------------------------------------------- Graphviz text


def to_dot(root: Tensor, show_values: bool = True, max_nodes: int = 200) -> str:
    """Graphviz DOT text for the graph that computed ``root``.

    Args:
        root: the tensor to explain, usually the loss.
        show_values: put data (for tensors of at most 4 numbers) and gradients in the labels.
        max_nodes: raise ValueError for bigger graphs, whose picture would be unreadable.

    The text is deterministic: nodes ``n0, n1, ...`` in topological order, leaves as boxes, ops as
    ellipses, and one edge ``input -> output`` per use (so ``x * x`` has two edges from x).
    """
    nodes = _checked_nodes(root, max_nodes)
    grads = node_gradients(root) if show_values else {}
    node_id = {id(t): f"n{i}" for i, t in enumerate(nodes)}
    lines = ["digraph bpcore {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10, style=filled];']
    for t in nodes:
        label = "\n".join(part for part in _label_parts(t, show_values, grads) if part is not None)
        label = label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        shape = "box" if t.op is None else "ellipse"
        lines.append(f'  {node_id[id(t)]} [label="{label}", shape={shape}, fillcolor="{_colour(t)}"];')
    for t in nodes:
        lines += [f"  {node_id[id(x)]} -> {node_id[id(t)]};" for x in t.parents]
    return "\n".join([*lines, "}", ""])


# ----------------------------------------------------------------------------- layered layout


def _place(nodes: list[Tensor], show_values: bool, grads: dict[Tensor, np.ndarray]):
    """Layer and order the graph. Returns the NodePlaces and, for drawing, each item's depth, height
    (top positive) and successors. Items 0..n-1 are the tensors; later items are waypoints. ``grads``
    are the gradients to show (see :func:`node_gradients`).
    """
    index = {id(t): i for i, t in enumerate(nodes)}
    depth: list[int] = []
    for t in nodes:  # inputs come first, so their depths are known already
        depth.append(max((depth[index[id(x)]] + 1 for x in t.parents), default=0))
    before: list[list[int]] = [[] for _ in nodes]  # item -> its links one layer to the left, one per use
    after: list[list[int]] = [[] for _ in nodes]
    lanes: dict[int, list[int]] = {}  # tensor -> its waypoints, in the layers right after its own
    budget = 10 * len(nodes)  # at most this many items: keeps graphs where all nodes feed the last one linear
    for i, t in enumerate(nodes):
        for x in t.parents:
            source = index[id(x)]
            # An arrow that skips layers would run underneath the boxes between, so it bends through one
            # waypoint per skipped layer, which takes a slot like a node. Arrows from one tensor share them.
            lane = lanes.setdefault(source, [])
            skipped = depth[i] - depth[source] - 1
            while len(lane) < skipped and len(depth) < budget:
                depth.append(depth[source] + len(lane) + 1)
                before.append([lane[-1] if lane else source])
                after.append([])
                after[before[-1][0]].append(len(depth) - 1)
                lane.append(len(depth) - 1)
            # the waypoint just left of node i (or the lane's end, if the budget ran out)
            previous = lane[min(skipped, len(lane)) - 1] if skipped and lane else source
            before[i].append(previous)
            after[previous].append(i)

    layers: list[list[int]] = [[] for _ in range(max(depth) + 1)]
    for item, d in enumerate(depth):
        layers[d].append(item)
    height = [0.0] * len(depth)

    def settle(layer: list[int]) -> None:  # centred, so layers of different sizes line up
        for slot, item in enumerate(layer):
            height[item] = (len(layer) - 1) / 2 - slot

    def barycentre(item: int, neighbours: list[list[int]]) -> float:
        linked = neighbours[item]
        return sum(height[k] for k in linked) / len(linked) if linked else height[item]

    for layer in layers:
        settle(layer)
    # Barycenter heuristic: move each item to the mean height of its neighbours in the layer just
    # ordered, sweeping right, then left, twice. Items near their neighbours make few crossing arrows.
    for sweep in range(4):
        rightwards = sweep % 2 == 0
        neighbours = before if rightwards else after
        for layer in layers[1:] if rightwards else layers[-2::-1]:
            layer.sort(key=lambda item: -barycentre(item, neighbours))  # stable: ties keep their order
            settle(layer)
    slot = {item: position for layer in layers for position, item in enumerate(layer)}
    places = {}
    for i, t in enumerate(nodes):
        title, shape, data, grad = _label_parts(t, show_values, grads)
        label = "\n".join(part for part in (title, data or shape, grad) if part is not None)
        places[f"n{i}"] = NodePlace(depth[i], slot[i], label)
    return places, depth, height, after


def layout(root: Tensor, show_values: bool = True) -> dict[str, NodePlace]:
    """Place every node of the graph behind ``root``, drawing nothing.

    Returns ``{node id: (depth, position, label)}``: depth is the longest path from any leaf (leaves
    at 0, every node right of its inputs), position the slot in that layer (0 = top; arrows that skip
    layers reserve slots too), label the text ``draw_graph`` puts in the box.
    """
    return _place(graph_nodes(root), show_values, node_gradients(root) if show_values else {})[0]


def graph_bytes(root: Tensor) -> int:
    """Bytes of every value held by the graph behind ``root``: the outputs of its ops.

    Inputs and parameters are left out: they exist with or without a graph. (A few VJPs also keep a
    temporary of their own, e.g. cross-entropy's exp; those are not counted.)
    """
    return sum(t.data.nbytes for t in topological_order(root, every_tensor=True) if t.op is not None)
