"""Tests for bpcore.graph: DOT text, the layered layout and the matplotlib picture."""

import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bpcore as bp
from bpcore.graph import graph_bytes, graph_nodes, layout, to_dot
from bpcore.plots import draw_graph

NODE_LINE = re.compile(r'^\s*(n\d+) \[label="((?:[^"\\]|\\.)*)", shape=(\w+)')
EDGE_LINE = re.compile(r"^\s*(n\d+) -> (n\d+);$")


def parse_dot(text):
    """{node id: (label lines, shape)} and the list of (input id, output id) edges."""
    nodes, edges = {}, []
    for line in text.splitlines():
        if match := NODE_LINE.match(line):
            nodes[match[1]] = (match[2].split("\\n"), match[3])
        elif match := EDGE_LINE.match(line):
            edges.append((match[1], match[2]))
    return nodes, edges


def fmt(array):
    """The 4-significant-digit text the labels use, written independently of graph.py."""
    values = np.asarray(array)
    if values.ndim == 0:
        return f"{values.item():.4g}"
    return "[" + ", ".join(f"{v:.4g}" for v in values.ravel()) + "]"


def neuron():
    """y = tanh(w x + b) with named leaves; x is data (no gradient)."""
    w = bp.tensor(0.5, requires_grad=True, name="w")
    x = bp.tensor(2.0, name="x")
    b = bp.tensor(-0.3, requires_grad=True, name="b")
    return w, x, b, (w * x + b).tanh()


def ids_by_title(root):
    return {lines[0]: node_id for node_id, (lines, _) in parse_dot(to_dot(root))[0].items()}


def mlp(rng):
    """Two layers with matrix shapes and a cross-entropy loss (wide 4-number labels), after backward."""
    x = bp.tensor(rng.standard_normal((4, 3)), name="X")
    w1 = bp.tensor(rng.standard_normal((3, 5)), requires_grad=True, name="W1")
    b1 = bp.tensor(np.zeros(5), requires_grad=True, name="b1")
    w2 = bp.tensor(rng.standard_normal((5, 2)), requires_grad=True, name="W2")
    b2 = bp.tensor(np.zeros(2), requires_grad=True, name="b2")
    log_probs = ((x @ w1 + b1).relu() @ w2 + b2).log_softmax(axis=1)
    loss = -log_probs[np.arange(4), np.array([0, 1, 1, 0])].mean()
    loss.backward()
    return loss


# ----------------------------------------------------------------------------- DOT text


def test_dot_has_every_name_op_and_edge():
    *_, y = neuron()
    nodes, edges = parse_dot(to_dot(y))
    titles = {node_id: lines[0] for node_id, (lines, _) in nodes.items()}
    assert sorted(titles.values()) == ["add", "b", "mul", "tanh", "w", "x"]
    named_edges = {(titles[a], titles[b]) for a, b in edges}
    assert named_edges == {("w", "mul"), ("x", "mul"), ("mul", "add"), ("b", "add"), ("add", "tanh")}
    assert len(edges) == 5
    shapes = {titles[node_id]: shape for node_id, (_, shape) in nodes.items()}
    assert shapes == dict.fromkeys(["w", "x", "b"], "box") | dict.fromkeys(["mul", "add", "tanh"], "ellipse")


def test_dot_is_deterministic_and_numbered_inputs_first():
    *_, y = neuron()
    text = to_dot(y)
    assert text == to_dot(y)
    assert text.startswith("digraph") and text.rstrip().endswith("}")
    nodes, edges = parse_dot(text)
    assert sorted(nodes, key=lambda n: int(n[1:])) == [f"n{i}" for i in range(6)]
    assert all(int(a[1:]) < int(b[1:]) for a, b in edges)
    assert nodes["n5"][0][0] == "tanh"  # the root comes last


def test_labels_show_values_and_then_gradients():
    w, x, b, y = neuron()
    before = {lines[0]: lines for lines, _ in parse_dot(to_dot(y))[0].values()}
    assert before["w"] == ["w", "scalar", "data 0.5"]
    assert before["tanh"][2] == f"data {fmt(np.tanh(0.7))}"
    assert not any(line.startswith("grad") for lines in before.values() for line in lines)

    y.backward()
    after = {lines[0]: lines for lines, _ in parse_dot(to_dot(y))[0].values()}
    assert after["w"][-1] == f"grad {fmt(w.grad)}" == "grad 1.269"  # x (1 - tanh(0.7)^2)
    assert after["b"][-1] == f"grad {fmt(b.grad)}"
    assert x.grad is None and not after["x"][-1].startswith("grad")  # data gets no gradient
    places = layout(y)
    ids = ids_by_title(y)
    assert places[ids["w"]].label.splitlines() == ["w", "data 0.5", f"grad {fmt(w.grad)}"]
    assert places[ids["b"]].label.splitlines()[-1] == f"grad {fmt(b.grad)}"


def test_show_values_false_keeps_only_titles_and_shapes():
    *_, y = neuron()
    y.backward()
    assert "data" not in to_dot(y, show_values=False) and "grad" not in to_dot(y, show_values=False)
    assert all(place.label.splitlines()[1] == "scalar" for place in layout(y, show_values=False).values())


def test_vectors_constants_settings_and_big_gradients():
    v = bp.tensor([1.0, -2.0, 3.0], requires_grad=True, name="v")
    m = bp.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="M")
    loss = ((v * 2.0).sum() + (1.0 - m).sum(axis=1).sum()) ** 2
    loss.backward()
    titles = [lines[0] for lines, _ in parse_dot(to_dot(loss))[0].values()]
    assert {"mul(·, 2)", "sub(1, ·)", "sum(axis=1)", "pow(·, 2)"} <= set(titles)
    labels = {lines[0]: lines for lines, _ in parse_dot(to_dot(loss))[0].values()}
    assert labels["v"][2:] == [f"data {fmt(v.data)}", f"grad {fmt(v.grad)}"]
    assert labels["M"][1:] == ["shape (2, 3)", f"grad norm {np.linalg.norm(m.grad):.4g}"]


def test_long_op_titles_are_cut():
    x = bp.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    picked = x[np.array([0, 2, 1]), np.array([3, 0, 1])]
    title = parse_dot(to_dot(picked))[0]["n1"][0][0]
    assert title == "getitem(…)"


# ----------------------------------------------------------------------------- graph shape and layout


def test_layout_depths():
    *_, y = neuron()
    places = layout(y)
    nodes = graph_nodes(y)
    assert list(places) == [f"n{i}" for i in range(len(nodes))]
    index = {id(t): i for i, t in enumerate(nodes)}
    for i, t in enumerate(nodes):
        depth = places[f"n{i}"].depth
        if t.is_leaf:
            assert depth == 0
        assert all(depth > places[f"n{index[id(p)]}"].depth for p in t.parents)
    tanh_id = ids_by_title(y)["tanh"]
    assert places[tanh_id].depth == max(place.depth for place in places.values()) == 3


def test_shared_tensor_is_one_node():
    a = bp.tensor([1.0, 2.0], requires_grad=True, name="a")
    d = a.exp() * a.tanh()  # a diamond: a feeds two ops that meet again
    nodes, edges = parse_dot(to_dot(d))
    assert len(nodes) == 4 and len(graph_nodes(d)) == 4
    ids = ids_by_title(d)
    edges_from_a = {edge for edge in edges if edge[0] == ids["a"]}
    assert edges_from_a == {(ids["a"], ids["exp"]), (ids["a"], ids["tanh"])}

    square = a * a  # one tensor read twice by the same op: one node, two edges
    nodes, edges = parse_dot(to_dot(square))
    assert len(nodes) == 2 and edges == [("n0", "n1"), ("n0", "n1")]


def test_slots_in_a_layer_are_distinct():
    loss = mlp(np.random.default_rng(0))
    places = layout(loss)
    slots = [(place.depth, place.position) for place in places.values()]
    assert len(set(slots)) == len(slots)


def count_crossings(root):
    """Pairs of arrows between the same two neighbouring layers that cross each other."""
    places, nodes = layout(root), graph_nodes(root)
    index = {id(t): i for i, t in enumerate(nodes)}
    arrows = [(places[f"n{index[id(p)]}"], places[f"n{i}"]) for i, t in enumerate(nodes) for p in t.parents]
    arrows = [(a, b) for a, b in arrows if b.depth == a.depth + 1]
    return sum(
        1
        for k, (a, b) in enumerate(arrows)
        for c, d in arrows[:k]
        if a.depth == c.depth and (a.position - c.position) * (b.position - d.position) < 0
    )


def test_ordering_removes_crossings():
    a = bp.tensor(1.0, requires_grad=True, name="a")
    b = bp.tensor(2.0, requires_grad=True, name="b")
    root = (a * b) * (a * a)
    # topological order puts a*b (n2) above a*a (n3), so b's arrow to a*b would cross a's arrows to a*a;
    # the barycenter pass moves a*a up next to a
    assert [place.position for place in layout(root).values()] == [0, 1, 1, 0, 0]
    assert count_crossings(root) == 0
    assert count_crossings(mlp(np.random.default_rng(2))) == 0


def test_long_chain_is_refused_but_can_be_laid_out():
    x = bp.tensor(0.5, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # Python's default, far below the chain's depth: recursion would fail
    try:
        with pytest.raises(ValueError, match=r"10001 nodes.*max_nodes=200.*smaller example"):
            to_dot(y)
        with pytest.raises(ValueError, match="10001 nodes"):
            draw_graph(y)
        places = layout(y)
    finally:
        sys.setrecursionlimit(limit)
    assert len(places) == 10_001
    assert places["n0"].depth == 0 and places["n10000"].depth == 10_000


@st.composite
def random_graphs(draw):
    """A random graph of unary and binary ops over a few leaves (some of them constants)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    needs_grad = [True, draw(st.booleans()), draw(st.booleans())]
    tensors = [bp.tensor(rng.standard_normal(2), requires_grad=flag) for flag in needs_grad]
    for _ in range(draw(st.integers(1, 12))):
        a, b = (tensors[draw(st.integers(0, len(tensors) - 1))] for _ in range(2))
        op = draw(st.sampled_from(["add", "mul", "tanh", "exp", "scale"]))
        if op in ("add", "mul"):
            tensors.append(a + b if op == "add" else a * b)
        else:
            tensors.append(a.tanh() if op == "tanh" else a.exp() if op == "exp" else a * 0.5)
    return tensors[-1]


@settings(max_examples=60, deadline=None)
@given(random_graphs())
def test_layout_properties_on_random_graphs(root):
    nodes = graph_nodes(root)
    index = {id(t): i for i, t in enumerate(nodes)}
    assert len(index) == len(nodes)  # no tensor twice
    places = layout(root)
    for i, t in enumerate(nodes):
        parent_depths = [places[f"n{index[id(p)]}"].depth for p in t.parents]  # parents come earlier
        assert all(index[id(p)] < i for p in t.parents)
        assert places[f"n{i}"].depth == max(parent_depths, default=-1) + 1  # longest path from a leaf
    slots = [(place.depth, place.position) for place in places.values()]
    assert len(set(slots)) == len(slots)
    dot_nodes, dot_edges = parse_dot(to_dot(root))
    assert len(dot_nodes) == len(nodes)
    assert len(dot_edges) == sum(len(t.parents) for t in nodes)


# ----------------------------------------------------------------------------- matplotlib picture


def test_draw_graph_draws_one_box_per_node(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.text import Annotation

    *_, y = neuron()
    y.backward()
    ax = draw_graph(y)
    boxes = [text for text in ax.texts if not isinstance(text, Annotation)]
    assert len(boxes) == len(layout(y)) == 6
    assert sorted(text.get_gid() for text in boxes) == sorted(layout(y))
    assert {text.get_text() for text in boxes} == {place.label for place in layout(y).values()}
    arrowheads = [a for a in ax.texts if isinstance(a, Annotation) and not isinstance(a.xycoords, str)]
    assert len(arrowheads) == 5  # one per edge; pieces through waypoints end at a point, not a box
    assert len(ax.texts) - len(boxes) == 6  # b -> add skips a layer, so it bends through one waypoint
    ax.figure.savefig(tmp_path / "neuron.png")
    plt.close(ax.figure)


def test_draw_graph_mlp_has_no_overlapping_boxes(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.text import Annotation

    loss = mlp(np.random.default_rng(1))
    ax = bp.draw_graph(loss)
    ax.figure.savefig(tmp_path / "mlp.png")  # draws everything, positioning the boxes
    texts = [text for text in ax.texts if not isinstance(text, Annotation)]
    boxes = [text.get_bbox_patch().get_window_extent() for text in texts]
    assert all(box.width > 20 and box.height > 20 for box in boxes)  # really drawn, in pixels
    assert len(boxes) == len(graph_nodes(loss))
    assert not any(boxes[i].overlaps(boxes[j]) for i in range(len(boxes)) for j in range(i))
    plt.close(ax.figure)

    fig, given_ax = plt.subplots()
    assert draw_graph(loss, ax=given_ax, show_values=False) is given_ax
    plt.close(fig)


def test_import_bpcore_does_not_import_matplotlib():
    code = "import bpcore, sys; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_package_wrappers_call_this_module():
    *_, y = neuron()
    assert bp.to_dot(y, show_values=False) == to_dot(y, show_values=False)


def test_graph_bytes_counts_op_outputs_only():
    x = bp.tensor(np.ones((4, 3)), requires_grad=True)  # a leaf: not counted
    y = (x * 2).tanh().sum()  # (4, 3) + (4, 3) + one number, float64
    assert graph_bytes(y) == 8 * (12 + 12 + 1)


# ----------------------------------------------------------------------------- every gradient, readable

# The width in CSS pixels of a notebook's output area in JupyterLab 4 in a 1200 x 800 browser window
# (the browser tests' viewport) with the file browser folded away, measured with Playwright as the
# bounding box of .jp-OutputArea-output. A wider picture is shown scaled down to this width.
OUTPUT_AREA_PX = 1020


def chain(retain=False):
    """Notebook 00's network, L = (sigmoid(w2 sigmoid(1.5 w1 + b1) + b2) - 0.2)^2 / 2, after backward.

    Returns the leaves, every op result (inputs first) and L. With ``retain`` every op result keeps its
    ``.grad``: the engine's own intermediate gradients, to check the picture against.
    """
    w1, b1 = bp.tensor(0.8, requires_grad=True, name="w1"), bp.tensor(-0.3, requires_grad=True, name="b1")
    w2, b2 = bp.tensor(-1.2, requires_grad=True, name="w2"), bp.tensor(0.4, requires_grad=True, name="b2")
    made = [w1 * 1.5]
    made.append(made[-1] + b1)
    made.append(made[-1].sigmoid())
    made.append(w2 * made[-1])
    made.append(made[-1] + b2)
    made.append(made[-1].sigmoid())
    made.append(made[-1] - 0.2)
    made.append(made[-1] ** 2)
    made.append(0.5 * made[-1])
    if retain:
        for t in made:
            t.retain_grad()
    made[-1].backward()
    return [w1, b1, w2, b2], made, made[-1]


def grad_lines(root):
    """{node id: its label's grad line or None}, from the layout (the text draw_graph puts in each box)."""
    return {
        node_id: next((line for line in place.label.splitlines() if line.startswith("grad")), None)
        for node_id, place in layout(root).items()
    }


def expected_line(g):
    g = np.asarray(g)
    return f"grad {fmt(g)}" if g.size <= 4 else f"grad norm {np.linalg.norm(g):.4g}"


def test_every_node_shows_its_gradient_after_backward():
    leaves, made, loss = chain()
    _, engine_made, _ = chain(retain=True)  # the same graph again, the engine keeping every gradient
    ids = {id(t): f"n{i}" for i, t in enumerate(graph_nodes(loss))}
    lines = grad_lines(loss)
    assert lines[ids[id(loss)]] == "grad 1"
    for t, engine in zip(made, engine_made, strict=True):
        assert lines[ids[id(t)]] == expected_line(engine.grad), f"{t.op}: {lines[ids[id(t)]]!r}"
    for leaf in leaves:
        assert lines[ids[id(leaf)]] == expected_line(leaf.grad)
    # to_dot and the drawn boxes say the same
    dot = {node_id: lines_[-1] for node_id, (lines_, _) in parse_dot(to_dot(loss))[0].items()}
    assert dot == lines
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = draw_graph(loss)
    drawn = {text.get_gid(): text.get_text().splitlines()[-1] for text in ax.texts if text.get_gid()}
    assert drawn == lines
    plt.close(ax.figure)


def test_intermediate_gradients_of_matrices_and_of_a_vector_root():
    loss = mlp(np.random.default_rng(3))
    nodes = graph_nodes(loss)
    lines = grad_lines(loss)
    needs_grad = [i for i, t in enumerate(nodes) if t.requires_grad]
    assert len(needs_grad) > 8 and all(lines[f"n{i}"] is not None for i in needs_grad)
    assert all(lines[f"n{i}"] is None for i, t in enumerate(nodes) if not t.requires_grad)  # X gets none

    x = bp.tensor([1.0, -2.0, 0.5], requires_grad=True, name="x")
    h = x.tanh()
    y = h * h * 3.0
    h2 = x.detach().requires_grad_().tanh()  # the engine's answer for h: retain_grad on a twin
    h2.retain_grad()
    seed = np.array([1.0, 0.5, -2.0])
    y.backward(seed)
    (h2 * h2 * 3.0).backward(seed)
    ids = {id(t): f"n{i}" for i, t in enumerate(graph_nodes(y))}
    assert grad_lines(y)[ids[id(h)]] == expected_line(h2.grad)  # from the seed backward used, not ones
    assert grad_lines(y)[ids[id(y)]] == expected_line(seed)


def test_picture_leaves_grad_as_pytorch_has_it():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    leaves, made, loss = chain()
    before = [leaf.grad.copy() for leaf in leaves]
    made[2].retain_grad()  # a retained intermediate: its .grad is set by the next backward only
    calls = []
    made[4].register_hook(lambda g: calls.append(g))  # a hook of the learner's: the picture does not run it
    ax = draw_graph(loss)
    to_dot(loss), layout(loss)
    plt.close(ax.figure)
    assert all(t.grad is None for t in made)  # non-leaves: None, as in PyTorch, after the picture too
    assert [leaf.grad for leaf in leaves] == before  # the leaves' gradients neither changed nor doubled
    assert calls == []


def test_no_gradients_before_backward_or_from_another_root():
    leaves = chain()[0]
    fresh = (leaves[0] * 2.0).tanh()  # the leaves hold gradients, but nothing ran backward from here
    lines = grad_lines(fresh)
    assert lines["n0"] == expected_line(leaves[0].grad)  # the leaf's .grad, as before
    assert lines["n1"] is None and lines["n2"] is None


def test_a_value_changed_in_place_after_backward_shows_no_intermediate_gradients():
    leaves, _, loss = chain()
    with bp.no_grad():  # an optimizer step: the VJPs would now read the new w1
        w1 = leaves[0]
        w1 -= 0.1
    lines = grad_lines(loss)
    assert [lines[f"n{i}"] for i in range(4)] == [expected_line(leaf.grad) for leaf in leaves]  # .grad, kept
    assert all(line is None for node_id, line in lines.items() if int(node_id[1:]) >= 4)  # none, not wrong ones


def on_screen_font_px(ax):
    """The smallest text of the picture in CSS pixels in a notebook: points at the figure's dpi, scaled
    down as the inline backend's PNG (bbox_inches="tight", at the figure's dpi) is to the output area."""
    import io

    from PIL import Image

    figure = ax.figure
    png = io.BytesIO()
    figure.savefig(png, format="png", bbox_inches="tight", dpi=figure.dpi)
    width = Image.open(io.BytesIO(png.getvalue())).size[0]
    smallest = min(text.get_fontsize() for text in [*ax.texts, ax.title] if text.get_text())
    return smallest * figure.dpi / 72 * min(1.0, OUTPUT_AREA_PX / width)


def test_text_is_at_least_10_pixels_in_a_notebook():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    *_, y = neuron()
    y.backward()
    with matplotlib.rc_context({"figure.dpi": 100}):  # the inline backend's (matplotlib's default)
        for loss in (chain()[2], y):  # notebooks 00 and 01 draw the first
            ax = draw_graph(loss)
            assert on_screen_font_px(ax) >= 10, f"{on_screen_font_px(ax):.1f} px"
            plt.close(ax.figure)
