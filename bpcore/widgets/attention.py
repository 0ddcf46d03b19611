"""Attention explorer: d_k, the 1/sqrt(d_k) scale and the causal mask, seen in the pattern and in the gradient.

One head on a short sequence: Q, K, V of shape (T, d_k) with N(0, 1) entries and a fixed upstream
gradient dO, through ``F.scaled_dot_product_attention`` and the engine's backward. Unscaled, a score
q . k has variance d_k: as d_k grows the softmax saturates (one key takes nearly all the weight) and
the gradient reaching Q and K shrinks towards zero. Scaled by 1/sqrt(d_k), the scores keep variance
about 1 whatever d_k is, and so does the gradient. The causal mask leaves each query t only the keys
s <= t: the upper triangle of the pattern is exactly zero.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from bpcore.labs import one_blas_thread
from bpcore.nn import functional as F
from bpcore.tensor import tensor
from bpcore.widgets.figure import FigureImage
from bpcore.widgets.guard import ErrorArea

LENGTH, D_V = 16, 16  # T queries and keys, values of d_v features (fixed: only d_k moves)
D_K_OPTIONS = [2**i for i in range(10)]  # 1 ... 512
D_K_MAX = D_K_OPTIONS[-1]


def attention_step(
    d_k: int, scaled: bool = True, causal: bool = False, seed: int = 0, pattern: bool = True, length: int = LENGTH
) -> dict:
    """One head's forward and backward: the scores' spread, the typical gradient reaching Q and K, the pattern.

    Q, K (T, d_k), V (T, d_v) and the upstream gradient dO (T, d_v) are N(0, 1); L = sum(O * dO), so
    dL/dO = dO. ``scaled=False`` uses scale 1 in place of 1/sqrt(d_k). The gradient norms are medians
    over rows of ||dL/dq_t|| and ||dL/dk_s||: a saturated row gets almost nothing, while a rare row
    with two near-equal top scores still gets a large gradient. ``pattern`` adds P (T, T).
    """
    rng = np.random.default_rng(seed)
    Q, K = rng.standard_normal((2, length, d_k))
    V, dO = rng.standard_normal((2, length, D_V))
    scale = None if scaled else 1.0  # None: the function's default, 1/sqrt(d_k)
    q, k, v = (tensor(a, requires_grad=True) for a in (Q, K, V))
    F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale).backward(dO)
    used = 1 / np.sqrt(d_k) if scaled else 1.0
    result = {
        "score_std": float(np.std(used * (Q @ K.T))),
        "grad_norm_q": float(np.median(np.linalg.norm(q.grad, axis=-1))),
        "grad_norm_k": float(np.median(np.linalg.norm(k.grad, axis=-1))),
    }
    if pattern:  # through the same function: with V = I the output is P itself
        eye = tensor(np.eye(length))
        weights = F.scaled_dot_product_attention(tensor(Q), tensor(K), eye, is_causal=causal, scale=scale).data
        result["weights"] = weights
        result["max_weight"] = float(weights.max(axis=-1).mean())  # 1/T when uniform, 1 when one-hot
    return result


class AttentionExplorer:
    """``result`` holds the numbers on display (pattern, score spread, gradient norms at Q and K).

    The right panel shows ||dL/dQ|| against d_k, scaled and unscaled, for the current seed and mask;
    ``sweep`` holds those curves.
    """

    def __init__(self):
        self.d_k = widgets.SelectionSlider(options=D_K_OPTIONS, value=64, description="d_k", continuous_update=False)
        self.scaled = widgets.Checkbox(value=True, description="scale by 1/sqrt(d_k)")
        self.causal = widgets.Checkbox(value=False, description="causal mask")
        self.seed = widgets.IntSlider(value=0, min=0, max=20, description="seed", continuous_update=False)
        self.summary = widgets.HTML()
        self._swept = None
        self.plot = FigureImage(figsize=(8.5, 3.6))
        self._build_axes()
        controls = [self.d_k, self.seed, self.scaled, self.causal]
        self.errors = ErrorArea()
        for control in controls:
            control.observe(
                self.errors.guard(lambda _change: self.update(), "recomputing the attention"), names="value"
            )
        self.widget = widgets.VBox(
            [widgets.HBox(controls[:2]), widgets.HBox(controls[2:]), self.errors.widget, self.summary, self.plot.widget]
        )
        self.update()

    def _build_axes(self) -> None:
        figure = self.plot.figure
        figure.clear()  # the two panels replace FigureImage's single axes
        layout = {"width_ratios": [1, 1.5], "wspace": 0.45, "left": 0.07, "right": 0.98, "bottom": 0.18, "top": 0.91}
        self.pattern_ax, self.grad_ax = figure.subplots(1, 2, gridspec_kw=layout)
        self.image = self.pattern_ax.imshow(np.zeros((LENGTH, LENGTH)), vmin=0, vmax=1, cmap="viridis")
        figure.colorbar(self.image, ax=self.pattern_ax, fraction=0.046, pad=0.04)
        ticks = range(0, LENGTH, 3)
        self.pattern_ax.set(xticks=ticks, yticks=ticks, xlabel="key position s", ylabel="query position t")
        self.pattern_ax.set_title("attention weights P")
        ax = self.grad_ax
        (self.scaled_line,) = ax.plot(D_K_OPTIONS, np.ones(len(D_K_OPTIONS)), marker=".", label="scaled")
        (self.unscaled_line,) = ax.plot(D_K_OPTIONS, np.ones(len(D_K_OPTIONS)), marker=".", label="unscaled")
        (self.current_point,) = ax.plot([1], [1], "o", color="black", fillstyle="none", markersize=10, label="shown")
        ax.set_xscale("log", base=2)
        self.plot.log_y(ax)
        ax.set(xlabel="d_k", ylabel="median ||dL/dq_t||", title="gradient reaching Q")
        ax.legend(loc="lower left")

    @one_blas_thread
    def update(self) -> None:
        d_k, scaled, causal, seed = self.d_k.value, self.scaled.value, self.causal.value, self.seed.value
        self.result = attention_step(d_k, scaled, causal, seed)
        if self._swept != (causal, seed):  # the curves depend on the mask and the seed only
            self.sweep = {
                label: np.array(
                    [attention_step(d, flag, causal, seed, pattern=False)["grad_norm_q"] for d in D_K_OPTIONS]
                )
                for label, flag in (("scaled", True), ("unscaled", False))
            }
            self._swept = (causal, seed)
        r = self.result
        how = "scaled by 1/sqrt(d_k)" if scaled else "unscaled"
        mask = ", causal" if causal else ""
        # the largest weight of a row spread evenly over the keys it sees: 1/T, or 1/(t+1) under the mask
        uniform = float(np.mean(1 / np.arange(1, LENGTH + 1))) if causal else 1 / LENGTH
        self.summary.value = (
            f"d_k = {d_k}, {how}{mask}: scores' std <b>{r['score_std']:.2f}</b>, "
            f"mean largest weight per query {r['max_weight']:.2f} (uniform: {uniform:.2f}); "
            f"typical ||dL/dq_t|| = <b>{r['grad_norm_q']:.3e}</b>, ||dL/dk_s|| = <b>{r['grad_norm_k']:.3e}</b> "
            "(medians over rows)"
        )
        self._draw()

    def _draw(self) -> None:
        self.image.set_data(self.result["weights"])
        self.scaled_line.set_ydata(self.sweep["scaled"])
        self.unscaled_line.set_ydata(self.sweep["unscaled"])
        self.current_point.set_data([self.d_k.value], [self.result["grad_norm_q"]])
        # the log axis holds every curve; zero norms (none in practice) are left out of the range
        shown = np.concatenate([self.sweep["scaled"], self.sweep["unscaled"]])
        shown = shown[shown > 0]
        if len(shown):
            self.grad_ax.set_ylim(shown.min() / 2, shown.max() * 2)
        self.plot.render()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
