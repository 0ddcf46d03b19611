"""What the terminal shows: the bank's LaTeX as readable Unicode, filled to the terminal's width."""

import io
import re

import pytest

from bpcore.quiz import render
from bpcore.quiz.cli import Terminal, main
from bpcore.quiz.instance import make_instance

SEEDS = range(4)
WIDTH = 72
COMMAND = re.compile(r"\\[A-Za-z]+|\\[,;:!{}|\\]")


def prose(text: str) -> str:
    """``text`` without what is code: code spans and the indented lines of a code block (4 spaces or more)."""
    lines = [line for line in text.split("\n") if not line.startswith("    ")]
    return re.sub(r"`[^`\n]*`", "", "\n".join(lines))


def problems(text: str) -> list[str]:
    """LaTeX that survived the rendering, and what would show as garbage."""
    found, rest = [], prose(text)
    found += [f"the command {c!r}" for c in COMMAND.findall(rest)]
    if rest.count("{") != rest.count("}"):
        found.append(f"unbalanced braces ({rest.count('{')} '{{' and {rest.count('}')} '}}')")
    found += [f"a {c!r}" for c in re.findall(r"[$\x00\x01\x02]", rest)]
    return found


def shown_texts(question, seed: int):
    """Everything the terminal can show for one question and seed, as the CLI renders it."""
    instance = make_instance(question, seed)
    yield "prompt", render.prompt(instance, "terminal")
    yield "solution", render.solution(instance, "terminal")
    for number, hint in enumerate(question.hints, start=1):
        yield f"hint {number}", render.terminal_text(hint)
    yield "explanation", render.terminal_text(question.explanation)
    if question.kind == "flashcard":
        yield "answer", render.terminal_text(question.spec["answer"])
    for mistake in question.spec.get("mistakes", []):
        if mistake.get("why"):
            yield f"mistake {mistake['name']}", render.terminal_text(mistake["why"])


def test_every_text_of_the_bank_renders_without_latex(bank, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    report = []
    for question in bank.questions:
        for seed in SEEDS:
            for field, text in shown_texts(question, seed):
                report += [f"{question.id} (seed {seed}) {field}: {p} in {text!r}" for p in problems(text)]
    assert not report, f"{len(report)} texts show raw LaTeX; the first ones:\n" + "\n".join(report[:15])


@pytest.mark.parametrize(
    ("latex", "expected"),
    [
        (r"\sqrt{2/(1 + a^2)}", "√(2/(1 + a^2))"),  # not √2/(1 + a^2), another formula
        (r"\tanh'(z)", "tanh'(z)"),
        (r"\sqrt\hat v", "√v̂"),
        (r"\mathbb R^n", "ℝ^n"),
        (r"\frac1{\sqrt{\sigma^2 + \epsilon}}", "1/√(σ^2 + ε)"),
        (r"\frac{\partial L}{\partial W_1}", "∂L/∂W_1"),
        (r"\frac{a + b}{c}", "(a + b)/c"),
        (r"\dfrac{1}{2}", "1/2"),
        (r"\frac{1}{2n}", "1/(2n)"),
        (r"\frac{2}{Nk}(Y - T)", "(2/(Nk))(Y - T)"),
        (r"L = \frac12\lVert y - t\rVert^2", "L = (1/2)‖y - t‖^2"),
        (r"h_t = \tanh(W x_t + U h_{t-1} + b)", "h_t = tanh(W x_t + U h_(t-1) + b)"),
        (r"\epsilon = 10^{-5}", "ε = 10^(-5)"),
        (r"H = \tanh(X W_1^\top + b_1)", "H = tanh(X W_1ᵀ + b_1)"),
        (r"(\partial F/\partial x)^\top \partial L/\partial y", "(∂F/∂x)ᵀ ∂L/∂y"),
        (r"h_t = o_t \odot \tanh(c_t)", "h_t = o_t ⊙ tanh(c_t)"),
        (r"\begin{bmatrix}1 & -2 \\ 3 & 4\end{bmatrix}", "[[1, -2], [3, 4]]"),
        (r"f''(x)", "f''(x)"),
        (r"\mathcal N(0, \sigma^2)", "𝒩(0, σ^2)"),
        (r"\log\sum_k e^{z_k}", "log ∑_k e^(z_k)"),  # not e^z_k, which reads as (e^z)_k
        (r"L + \frac{\lambda}{2}\sum w^2", "L + (λ/2)∑ w^2"),
        (r"\dfrac{dL}{dw}", "dL/dw"),
        (r"f_t = \sigma(\cdot)", "f_t = σ(·)"),
        (r"n_{\text{in}}\mathrm{Var}(W)", "n_in Var(W)"),
        (r"\lceil 50000/128 \rceil = 391", "⌈50000/128⌉ = 391"),
    ],
)
def test_formulas_read_as_written(latex, expected):
    assert render.maths_to_text(latex) == expected


def test_the_he_gain_prompt_keeps_its_square_root_whole(bank, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    text = render.prompt(make_instance(bank.get("init-he-leaky-std"), 0), "terminal")
    assert "gain = √(2/(1 + a^2))" in text and "√2/" not in text
    assert "gain/√fan_in" in text


def test_wrap_fills_paragraphs_and_items_and_leaves_code_and_arrays_whole():
    words = " ".join(f"word{i}" for i in range(30))
    array = "[[0.1234, -0.5678, 0.9], [0.25, -1, 0.75]]"
    code = "x = 1  # " + "long " * 12
    text = f"{words} W = {array} here.\n\nSecond paragraph.\n\n```python\n{code}\n```\n\n* {words}"
    out = render.wrap(text, width=30)
    paragraphs = out.split("\n\n")
    assert len(paragraphs) == 4, out
    assert all(len(line) <= 30 for line in paragraphs[0].split("\n") if array not in line), out
    assert array in out  # a number array is never broken across lines
    assert paragraphs[1] == "Second paragraph."
    assert paragraphs[2] == "    " + code.rstrip()  # code: indented, not re-wrapped
    item = paragraphs[3].split("\n")
    assert item[0].startswith("* word0") and all(line.startswith("  word") for line in item[1:]), out
    assert " ".join(line.strip("* ") for line in item).split() == words.split()


def test_a_short_formula_is_not_broken_across_lines():
    text = render.terminal_text("Here the step is $w \\leftarrow w - \\eta g$ and so on.", width=24)
    assert "w ← w - η g" in text.split("\n")[1], text


def test_the_cli_fills_a_prompt_to_the_terminal_width(home, write_bank, monkeypatch):
    long_prompt = " ".join(["The gradient $\\\\partial L/\\\\partial W$ flows back."] * 8)  # TOML escapes
    banks = write_bank(
        "wide.toml",
        f"""
        topic = "wide"
        title = "Wide"

        [[question]]
        id = "wide-number"
        level = "basic"
        kind = "numeric"
        prompt = "{long_prompt} What is $\\\\frac{{1}}{{4}}$?"
        answer = "0.25"
        hints = ["a quarter"]
        explanation = "It is $\\\\sqrt{{1/16}}$."
        notebook = "notebooks/00_start_here.ipynb"
        tags = []
        """,
    )
    monkeypatch.setenv("COLUMNS", "40")
    lines, screen = ["0.25"], io.StringIO()

    def read(_prompt):
        if not lines:
            raise EOFError
        return lines.pop(0)

    assert main(["--banks", str(banks), "quiz"], Terminal(read=read, out=screen)) == 0
    shown = screen.getvalue()
    assert "∂L/∂W" in shown and "What is 1/4?" in shown and "It is √(1/16)." in shown, shown
    prompt_lines = shown.split("wide-number\n")[1].split("\n\n")[0].split("\n")
    assert max(len(line) for line in prompt_lines) <= 40, prompt_lines
    assert " ".join(prompt_lines) == " ".join(["The gradient ∂L/∂W flows back."] * 8) + " What is 1/4?"
