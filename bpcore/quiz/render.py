"""Turn an instance into what a learner reads: Markdown with LaTeX (notebook) or plain text (terminal).

Two styles share one code path: ``"latex"`` writes arrays as ``bmatrix`` for MathJax, ``"text"``
writes them as ``[[0.5, -1], [0.3, 0.8]]``, which is also the syntax the answer parser reads, so a
learner can copy numbers out of a prompt. :func:`markdown_to_html` is a deliberately small
converter (paragraphs, lists, code, bold, italics) that leaves ``$...$`` maths untouched for MathJax.
"""

from __future__ import annotations

import html
import inspect
import re
import textwrap

import numpy as np

from bpcore.quiz.bank import PLACEHOLDER
from bpcore.quiz.instance import LETTERS, Instance


def number(x) -> str:
    """4 significant digits, no trailing zeros: 0.5, -1, 0.1235, 0.004264. Integers in full: 73856."""
    if np.issubdtype(np.asarray(x).dtype, np.integer):
        return str(int(x))
    text = np.format_float_positional(float(x), precision=4, fractional=False, trim="-")
    return "0" if text in ("-0", "-0.") else text


def array_text(a) -> str:
    """``[[0.5, -1], [0.3, 0.8]]``: readable, and readable back by ``parse_array``."""
    a = np.asarray(a)
    if a.ndim == 0:
        return number(a)
    return "[" + ", ".join(array_text(row) for row in a) + "]"


def array_latex(a, layout: str = "col") -> str:
    """A LaTeX bmatrix. Vectors are columns, as in the equations, unless ``layout="row"``."""
    a = np.asarray(a)
    if a.ndim == 0:
        return number(a)
    rows = (a[None, :] if layout == "row" else a[:, None]) if a.ndim == 1 else a
    body = r" \\ ".join(" & ".join(number(v) for v in row) for row in rows)
    return r"\begin{bmatrix}" + body + r"\end{bmatrix}"


def value(v, style: str, layout: str | None = None) -> str:
    if isinstance(v, np.ndarray) and v.ndim > 0:
        return array_latex(v, layout or "col") if style == "latex" else array_text(v)
    if isinstance(v, float | int | np.number):
        return number(v)
    return str(v)


# ----------------------------------------------------------------------------- LaTeX for a terminal

# fmt: off
_SYMBOLS = {
    r"\partial": "∂", r"\sigma": "σ", r"\delta": "δ", r"\Delta": "Δ", r"\eta": "η", r"\mu": "μ",
    r"\lambda": "λ", r"\alpha": "α", r"\theta": "θ", r"\varepsilon": "ε", r"\epsilon": "ε", r"\infty": "∞",
    r"\odot": "⊙", r"\cdot": "·", r"\times": "×", r"\top": "ᵀ", r"\sum": "Σ", r"\approx": "≈",
    r"\le": "≤", r"\ge": "≥", r"\to": "→", r"\leftarrow": "←", r"\lVert": "‖", r"\rVert": "‖",
    r"\dots": "...", r"\ldots": "...", r"\log": "log", r"\exp": "exp", r"\max": "max",
    r"\quad": "  ", r"\,": " ", r"\;": " ", r"\left": "", r"\right": "",
    r"\tfrac": r"\frac", r"\dfrac": r"\frac",
}
# fmt: on
_FRAC = re.compile(r"\\frac\{([^{}]*)\}\{([^{}]*)\}")


def _operand(text: str, denominator: bool = False) -> str:
    text = re.sub(r"∂\s+", "∂", text.strip())
    grouped = re.search(r"[-+·× ]", text) or (denominator and re.fullmatch(r"\d+[a-zA-Z]\w*", text))
    return f"({text})" if grouped else text


_CODE = re.compile(r"```.*?```|`[^`]*`", re.S)


def latex_to_text(text: str) -> str:
    """Readable plain text from inline LaTeX: \\frac{a}{b} -> a/b, \\partial -> ∂, $ removed. Code is left alone."""
    pieces = _CODE.split(text)
    codes = _CODE.findall(text)
    out = [_latex_piece(pieces[0])]
    for code, piece in zip(codes, pieces[1:], strict=True):
        out += [code, _latex_piece(piece)]
    return "".join(out)


def _latex_piece(text: str) -> str:
    text = re.sub(r"\\(?:text|mathbf|mathrm|operatorname)\{([^{}]*)\}", r"\1", text)
    for command, symbol in sorted(_SYMBOLS.items(), key=lambda kv: -len(kv[0])):
        word_end = r"(?![a-zA-Z])" if command[-1].isalpha() else ""  # \to must not match \top; \, may touch a letter
        text = re.sub(re.escape(command) + word_end, lambda m, s=symbol: s, text)
    text = re.sub(r"([\^_])\{([^{}]*)\}", lambda m: m.group(1) + _operand(m.group(2)), text)
    text = re.sub(r"\\frac(\w)(\w)", r"\1/\2", text).replace("^ᵀ", "ᵀ")
    text = re.sub(r"∂\s+(?=\w)", "∂", text)
    while _FRAC.search(text):
        text = _FRAC.sub(lambda m: f"{_operand(m.group(1))}/{_operand(m.group(2), denominator=True)}", text)
    text = text.replace("$$", "").replace("$", "")
    for pattern, _ in _INLINE:  # Markdown emphasis: keep the words, drop the stars
        text = pattern.sub(r"\1", text)
    return re.sub(r"\{([^{}]*)\}", r"\1", text)


# ----------------------------------------------------------------------------- prompt and solution


def fill(template: str, values: dict, style: str) -> str:
    return PLACEHOLDER.sub(lambda m: value(values[m.group(1)], style, m.group(2)), template)


def prompt(instance: Instance, style: str = "latex") -> str:
    """The full question in Markdown: prompt, then choices, items, code listing or steps."""
    q, parts = instance.question, [fill(instance.question.prompt, instance.values, style).strip()]
    if q.kind in ("single", "multi"):
        choices = q.spec["choices"]
        parts.append("\n".join(f"* ({LETTERS[p]}) {choices[instance.option(p)]}" for p in range(len(choices))))
    elif q.kind == "order":
        items = q.spec["items"]
        parts.append("\n".join(f"* ({LETTERS[i]}) {items[j]}" for i, j in enumerate(instance.display)))
    elif q.kind == "bughunt":
        parts.append("```python\n" + instance.values["listing"] + "\n```")
        fixes = q.spec["fixes"]
        parts.append(
            "Possible fixes:\n\n"
            + "\n".join(f"* ({LETTERS[p]}) `{fixes[instance.option(p)]}`" for p in range(len(fixes)))
        )
    elif q.kind == "code":
        parts.append("```python\n" + instance.key.signature + "\n```")
    text = "\n\n".join(parts)
    return latex_to_text(text) if style == "text" else text


def _source(fn) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn)).strip()
    except OSError:
        return f"{fn.__name__} (source not available)"


def solution(instance: Instance, style: str = "latex") -> str:
    """The answer, in Markdown, as a learner would write it."""
    q, key = instance.question, instance.key
    if q.kind == "single":
        text = f"({instance.letter(key)}) {q.spec['choices'][key]}"
    elif q.kind == "multi":
        text = "; ".join(f"({instance.letter(i)}) {q.spec['choices'][i]}" for i in sorted(key, key=instance.letter))
    elif q.kind == "numeric":
        text = number(key)
    elif q.kind == "matrix" and instance.steps:
        text = "\n".join(
            f"* {_step_label(name, instance, style)} = {_math(value(key[name], style), style)}"
            for name in instance.steps
        )
    elif q.kind == "matrix":
        text = _math(value(np.asarray(key), style), style)
    elif q.kind == "order":
        text = "\n".join(f"{i + 1}. {item}" for i, item in enumerate(q.spec["items"]))
    elif q.kind == "code":
        text = (
            "One correct version:\n\n```python\n"
            + _source(key.solution).replace(key.solution.__name__, key.function, 1)
            + "\n```"
        )
    elif q.kind == "bughunt":
        line, fix = key
        text = f"The bug is on line {line}; the fix is ({instance.letter(fix)}) `{q.spec['fixes'][fix]}`"
    else:
        text = str(key)
    return latex_to_text(text) if style == "text" else text


def _math(text: str, style: str) -> str:
    return f"${text}$" if style == "latex" else text


def _step_label(name: str, instance: Instance, style: str) -> str:
    return f"${instance.steps[name]}$" if style == "latex" else name


# ----------------------------------------------------------------------------- Markdown to HTML

_BULLET = re.compile(r"^\s*([*-]|\d+\.)\s+")
_MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+?\$", re.S)
_INLINE = [
    (re.compile(r"\*\*(.+?)\*\*"), r"<b>\1</b>"),
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"<i>\1</i>"),
]


def inline_html(text: str) -> str:
    """Escape, then code spans, bold, italics; maths and code are set aside first so nothing inside changes."""
    kept: list[str] = []

    def keep(fragment: str) -> str:
        kept.append(fragment)
        return f"\x00{len(kept) - 1}\x00"

    text = re.sub(r"`([^`]+)`", lambda m: keep(f"<code>{html.escape(m.group(1))}</code>"), text)
    text = _MATH.sub(lambda m: keep(html.escape(m.group(0), quote=False)), text)
    text = html.escape(text, quote=False)
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], text)


def markdown_to_html(text: str) -> str:
    """Paragraphs, ``*``/``-`` and ``1.`` lists, fenced code, inline code, bold, italics; $maths$ untouched."""
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            block = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                block.append(lines[i])
                i += 1
            out.append(f"<pre><code>{html.escape(chr(10).join(block))}</code></pre>")
            i += 1
        elif re.match(r"\s*([*-]|\d+\.)\s", line):
            tag = "ol" if re.match(r"\s*\d+\.", line) else "ul"
            items = []
            while i < len(lines) and re.match(r"\s*([*-]|\d+\.)\s", lines[i]):
                items.append("<li>" + inline_html(_BULLET.sub("", lines[i])) + "</li>")
                i += 1
            out.append(f"<{tag}>{''.join(items)}</{tag}>")
        elif not line.strip():
            i += 1
        else:
            paragraph = []
            while (
                i < len(lines)
                and lines[i].strip()
                and not lines[i].startswith("```")
                and not re.match(r"\s*([*-]|\d+\.)\s", lines[i])
            ):
                paragraph.append(lines[i])
                i += 1
            out.append(f"<p>{inline_html(chr(10).join(paragraph))}</p>")
    return "\n".join(out)
