"""Turn an instance into what a learner reads: Markdown with LaTeX (notebook) or plain text (terminal).

Three styles share one code path: ``"latex"`` writes arrays as ``bmatrix`` for MathJax, ``"text"``
writes them as ``[[0.5, -1], [0.3, 0.8]]``, which is also the syntax the answer parser reads, so a
learner can copy numbers out of a prompt, and turns the maths into Unicode (pylatexenc parses it);
``"terminal"`` is ``"text"`` filled to the terminal's width, formulas and arrays kept whole.
:func:`markdown_to_html` is a deliberately small converter (paragraphs, lists, code, bold, italics)
that leaves ``$...$`` maths untouched for MathJax.
"""

from __future__ import annotations

import functools
import html
import inspect
import re
import shutil
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
#
# pylatexenc parses the maths (arguments, groups, environments, TeX's single-token arguments); the rules
# below say how this course's notation reads as plain text. A fraction, root or sub/superscript whose
# argument is more than one symbol gets parentheses, so the text never reads as another formula:
# \sqrt{2/(1 + a^2)} -> √(2/(1 + a^2)), not √2/(1 + a^2); h_{t-1} -> h_(t-1), not h_t-1.

_FUNCTIONS = ("tanh", "sinh", "cosh", "sin", "cos", "exp", "log", "ln", "max", "min", "arg", "det", "sup", "inf")
# fmt: off
_OPERATORS = {  # binary operators and relations: spaced like TeX spaces them
    "odot": "⊙", "cdot": "·", "times": "×", "approx": "≈", "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥",
    "ne": "≠", "neq": "≠", "to": "→", "rightarrow": "→", "leftarrow": "←", "gets": "←", "sim": "~",
    "propto": "∝", "in": "∈", "mid": "|", "otimes": "⊗", "equiv": "≡", "ll": "≪", "gg": "≫",
}
_SYMBOLS = {"epsilon": "ε", "varepsilon": "ε", "top": "ᵀ", "cdots": "···", "ldots": "...", "dots": "...",
            "quad": "  ", "qquad": "  ", ",": " ", ";": " ", ":": " ", "!": "", "lVert": "‖", "rVert": "‖",
            "Vert": "‖", "lvert": "|", "rvert": "|"}
# fmt: on
_ARGUMENT_MACROS = r"sqrt|hat|bar|overline|tilde|widetilde|widehat|vec|dot|ddot|mathbb|mathcal|mathrm|mathbf|text"
# \sqrt\hat v: TeX hands \hat to \sqrt as its argument and \hat then takes v; pylatexenc does not, so brace it
_MACRO_AS_ARGUMENT = re.compile(
    rf"(\\(?:{_ARGUMENT_MACROS}))\s*(\\(?:{_ARGUMENT_MACROS}))\s*([A-Za-z0-9]|\{{[^{{}}]*\}})"
)
_OVERLINE = "\u0305"  # combining overline, once per character: a bar over the whole group


_SYMBOL = re.compile(r"(?:∂|d(?=[^\W\d_]))?(?:[^\W\d_]|\d+(?:\.\d+)?)[\u0300-\u036f]*'*(?:[_^](?:\w+|\(.*\)))*'*\Z")


def _atomic(text: str, denominator: bool = False) -> bool:
    """Whether ``text`` reads as one factor: no operator, space or comma outside parentheses or brackets.

    A denominator must be one symbol (``n_in``, ``∂W_1``, ``√(n)``, ``(a + b)``): ``1/2n`` and ``2/Nk``
    would read as (1/2)n and (2/N)k.
    """
    bare, previous = text, None
    while bare != previous:
        previous, bare = bare, re.sub(r"\([^()]*\)|\[[^\[\]]*\]", "", bare)
    if re.search(r"[\s+\-−·×/=,<>≤≥≈±⊙→←~∈|]", bare):
        return False
    if not denominator or text.startswith("(") or _SYMBOL.match(text):
        return True
    return bool(re.fullmatch(r"[^\W\d]\w*\(.*\)|√.*|‖.*‖", text))  # σ(z), √(n), ‖g‖


def _grouped(text: str, denominator: bool = False, script: bool = False) -> str:
    text = text.strip()
    nested = script and re.search(r"[_^]", re.sub(r"\([^()]*\)", "", text))  # e^{z_k} -> e^(z_k), not e^z_k
    return text if _atomic(text, denominator) and not nested else f"({text})"


# a fraction with a factor right before it, or anything but an operator or a closing bracket after it
_TOUCHING_FRACTION = re.compile(
    r"(?<=[\w)\]'])\x01([^\x01\x02]*)\x02|\x01([^\x01\x02]*)\x02(?=\s*[^\s+\-−=,;:)\]<>≤≥≈|/·×⊙→←~.ᵀ^_'])"
)


def _paren(match) -> str:
    return f"({match.group(1) or match.group(2)})"


def _tidy(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    while "\x01" in text:  # innermost fractions first; bracketed where a factor touches them
        text = _TOUCHING_FRACTION.sub(_paren, text)
        text = re.sub(r"\x01([^\x01\x02]*)\x02", r"\1", text)
    functions = "|".join(_FUNCTIONS)
    text = re.sub(rf"∂ ?(?=(?:{functions})\b)", "∂ ", re.sub(r"∂ (?=\w)", "∂", text)).replace("^ᵀ", "ᵀ")
    text = re.sub(r"‖ ([^‖]*?) ?‖", r"‖\1‖", text)  # \lVert g \rVert -> ‖g‖
    text = re.sub(r"(?<=[⌊⌈∇]) (?=\S)|(?<=\S) (?=[⌋⌉])", "", text)  # ⌈50000/128⌉, ∇L
    text = text.replace("( · )", "(·)")  # σ(\cdot)
    text = re.sub(rf"\b({functions}) (?=[(\['^_])", r"\1", text)
    return re.sub(r"ᵀ(?=[^\s)\],.;:+\-−/^_'ᵀ|‖])", "ᵀ ", text)  # (∂F/∂x)ᵀ ∂L/∂y, not (∂F/∂x)ᵀ∂L/∂y


def _is_word(node, text: str) -> bool:
    """A macro that prints a word (\\mathrm{Var}, \\log, \\text{if}): spaced from a symbol before it."""
    return getattr(node, "macroname", None) is not None and bool(re.match(r"[^\W\d_]{2}", text))


def _arg(node, k: int, l2t) -> str:
    return _tidy(l2t.node_arg_to_text(node, k))


def _frac(node, l2tobj):
    # marked, so that _tidy can bracket a fraction that something multiplies: \frac{2}{N}(y - t) -> (2/N)(y - t)
    return f"\x01{_grouped(_arg(node, 0, l2tobj))}/{_grouped(_arg(node, 1, l2tobj), denominator=True)}\x02"


def _sqrt(node, l2tobj):
    degree = _arg(node, 0, l2tobj)
    return ("" if not degree else f"{degree}-th ") + "√" + _grouped(_arg(node, 1, l2tobj))


def _overline(node, l2tobj):
    return re.sub(r"(.[\u0300-\u036f]*)", r"\1" + _OVERLINE, _arg(node, 0, l2tobj).replace(" ", ""))


def _matrix(node, l2tobj):
    """``[[1, 2], [3, 4]]``: the syntax the answer parser reads."""
    from pylatexenc import latexwalker

    rows, row, cell = [], [], []
    for n in node.nodelist:
        if n.isNodeType(latexwalker.LatexSpecialsNode) and n.specials_chars == "&":
            row, cell = [*row, cell], []
        elif n.isNodeType(latexwalker.LatexMacroNode) and n.macroname == "\\":
            rows, row, cell = [*rows, [*row, cell]], [], []
        else:
            cell.append(n)
    rows.append([*row, cell])
    texts = [[_tidy(l2tobj.nodelist_to_text(c)) for c in r] for r in rows]
    texts = [r for r in texts if any(r)]
    return "[" + ", ".join("[" + ", ".join(r) + "]" for r in texts) + "]"


@functools.cache
def _converter():
    """A pylatexenc converter for maths (built once: loading its tables takes a moment)."""
    from pylatexenc import latexwalker, macrospec
    from pylatexenc.latex2text import (
        EnvironmentTextSpec,
        LatexNodes2Text,
        MacroTextSpec,
        SpecialsTextSpec,
        get_default_latex_context_db,
    )

    class Maths2Text(LatexNodes2Text):
        def nodelist_to_text(self, nodelist):
            # as LatexNodes2Text does (a bare macro keeps its following space before letters), and a
            # braced sub/superscript keeps its grouping: x^{-5} -> x^(-5), h_{t-1} -> h_(t-1)
            s, previous = "", None
            for node in nodelist:
                if node.isNodeType(latexwalker.LatexGroupNode) and s.endswith(("^", "_")):
                    s += _grouped(_tidy(super().nodelist_to_text(node.nodelist)), script=True)
                else:
                    if self._is_bare_macro_node(previous) and node.isNodeType(latexwalker.LatexCharsNode):
                        s += previous.macro_post_space
                    piece = self.node_to_text(node)
                    if _is_word(node, piece) and re.search(r"[\w)]\Z", s):
                        s += " "
                    s += piece
                previous = node
            return s

    parse = latexwalker.get_default_latex_context_db()
    parse.add_context_category(
        "bpcore",
        prepend=True,
        macros=[macrospec.MacroSpec(name, "{{") for name in ("dfrac", "tfrac", "cfrac")]
        + [macrospec.MacroSpec("operatorname", "{")],
    )
    spaced = [MacroTextSpec(name, f" {symbol} ") for name, symbol in _OPERATORS.items()]
    text = get_default_latex_context_db()
    text.add_context_category(
        "bpcore",
        prepend=True,
        macros=[MacroTextSpec(name, _frac) for name in ("frac", "dfrac", "tfrac", "cfrac")]
        + [MacroTextSpec("sqrt", _sqrt), MacroTextSpec("overline", _overline), MacroTextSpec("bar", _overline)]
        + [MacroTextSpec("operatorname", "%s")]
        + [MacroTextSpec(name, f"{name} ") for name in _FUNCTIONS]
        + [MacroTextSpec(name, symbol) for name, symbol in _SYMBOLS.items()]
        + spaced,
        environments=[EnvironmentTextSpec(name, _matrix) for name in ("bmatrix", "pmatrix", "matrix", "vmatrix")],
        specials=[SpecialsTextSpec("''", "''"), SpecialsTextSpec("--", "--"), SpecialsTextSpec("~", " ")],
    )
    l2t = Maths2Text(latex_context=text, math_mode="text")

    def convert(maths: str) -> str:
        while _MACRO_AS_ARGUMENT.search(maths):
            maths = _MACRO_AS_ARGUMENT.sub(r"\1{\2{\3}}", maths)
        nodes = latexwalker.LatexWalker(f"${maths}$", latex_context=parse, tolerant_parsing=True).get_latex_nodes()
        return _tidy(l2t.nodelist_to_text(nodes[0]))

    return convert


_CODE = re.compile(r"```.*?```|`[^`]*`", re.S)


def maths_to_text(maths: str) -> str:
    """One formula (the inside of ``$...$``) as plain Unicode: ``\\frac{\\partial L}{\\partial W}`` -> ``∂L/∂W``."""
    return _converter()(maths)


def latex_to_text(text: str, keep_together: int = 0) -> str:
    """Markdown with $maths$ to plain text: each formula converted, emphasis stars dropped, code left alone.

    With ``keep_together``, the spaces of a formula up to that long become ``\\x00`` so that :func:`wrap`
    never breaks it across lines (it turns them back into spaces).
    """
    pieces = _CODE.split(text)
    codes = _CODE.findall(text)
    out = [_latex_piece(pieces[0], keep_together)]
    for code, piece in zip(codes, pieces[1:], strict=True):
        out += [code, _latex_piece(piece, keep_together)]
    return "".join(out)


def _formula(maths: str, keep_together: int) -> str:
    text = maths_to_text(maths.strip("$"))
    return text.replace(" ", "\x00") if len(text) <= keep_together else text


def _latex_piece(text: str, keep_together: int = 0) -> str:
    text = _MATH.sub(lambda m: _formula(m.group(0), keep_together), text)
    for pattern, _ in _INLINE:  # Markdown emphasis: keep the words, drop the stars
        text = pattern.sub(r"\1", text)
    return text


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
    return _finish(text, style)


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
    return _finish(text, style)


def _finish(text: str, style: str) -> str:
    """latex: as written; text: maths in Unicode; terminal: that, filled to the terminal's width."""
    return {"latex": lambda: text, "text": lambda: latex_to_text(text), "terminal": lambda: terminal_text(text)}[
        style
    ]()


def _math(text: str, style: str) -> str:
    return f"${text}$" if style == "latex" else text


def _step_label(name: str, instance: Instance, style: str) -> str:
    return f"${instance.steps[name]}$" if style == "latex" else name


# ----------------------------------------------------------------------------- plain text to a terminal's width

_ITEM = re.compile(r"(\s*)([*-]|\d+\.)\s+")
_UNBREAKABLE = re.compile(r"`[^`]*`|\[[\[\]\d\s.,eE+\-−]*\]")  # code spans and number arrays: [[0.5, -1], [3, 4]]


def _fill(words: str, width: int, first: str, rest: str) -> str:
    kept = _UNBREAKABLE.sub(lambda m: m.group(0).replace(" ", "\x00"), words)
    filled = textwrap.fill(
        kept, width, initial_indent=first, subsequent_indent=rest, break_long_words=False, break_on_hyphens=False
    )
    return filled.replace("\x00", " ")


def wrap(text: str, width: int | None = None, indent: str = "") -> str:
    """Plain text filled to ``width`` (the terminal's by default), as Markdown reads: the lines of a
    paragraph or list item flow together, blank lines stay, list items hang under their marker, code
    blocks are shown indented and never re-wrapped, and no number array or code span is broken."""
    width = max(20, width or shutil.get_terminal_size().columns)
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            i += 1
            while i < len(lines) and not lines[i].lstrip().startswith("```"):
                out.append((indent + "    " + lines[i].replace("\x00", " ")).rstrip())
                i += 1
            i += 1
            continue
        if not line.strip():
            if not out or out[-1]:
                out.append("")
            i += 1
            continue
        item = _ITEM.match(line)
        block = [line[item.end() :] if item else line.strip()]
        i += 1
        while i < len(lines) and lines[i].strip() and not lines[i].lstrip().startswith("```"):
            if _ITEM.match(lines[i]):
                break
            block.append(lines[i].strip())
            i += 1
        if item:
            marker = indent + item.group(1) + item.group(2) + " "
            out.append(_fill(" ".join(block), width, marker, " " * len(marker)))
        else:
            out.append(_fill(" ".join(block), width, indent, indent))
    return "\n".join(out)


def terminal_width(width: int | None = None) -> int:
    """``width``, or the terminal's (``COLUMNS`` if set), never under 20."""
    return max(20, width or shutil.get_terminal_size().columns)


def fit(text: str, width: int | None = None) -> str:
    """Every line of ``text`` at most ``width`` columns, broken only at spaces, never inside a word.

    The last step of everything the terminal prints (:meth:`bpcore.quiz.cli.Terminal.say`): text that
    :func:`terminal_text` filled passes unchanged; a longer line (a header, a message, a prefix added to
    filled text, a code line) is broken at its last space that fits. Spacing inside the line is kept (code
    keeps its indentation); the rest goes on under the text of a list item, or, for an indented line such
    as code, four columns further in. A single word longer than the width stays whole on its own line.
    """
    width = terminal_width(width)
    out = []
    for line in text.split("\n"):
        if len(line) <= width or not line.strip():
            out.append(line)
            continue
        lead = line[: len(line) - len(line.lstrip())]
        item = _ITEM.match(line)
        hang = " " * item.end() if item else (lead + "    " if lead else "")
        if len(hang) > width // 2:
            hang = ""
        current, pieces = lead, re.split(r"( +)", line[len(lead) :])
        words = pieces[0::2]
        spaces = ["", *pieces[1::2]]
        for space, word in zip(spaces, words, strict=True):
            if not word:
                continue
            if current.strip() and len(current) + len(space) + len(word) > width:
                out.append(current)
                current = hang + word
            else:
                current += space + word
        out.append(current)
    return "\n".join(out)


def terminal_text(markdown: str, width: int | None = None, indent: str = "") -> str:
    """Markdown with $maths$ as a terminal shows it: maths in Unicode, filled to the terminal's width."""
    width = max(20, width or shutil.get_terminal_size().columns)
    return wrap(latex_to_text(markdown, keep_together=min(40, width // 2)), width, indent)


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
