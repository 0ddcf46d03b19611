"""LSTM training throughput on the character model: bpcore against a hand-written numpy LSTM
(forward and backward through time written out) and PyTorch on the CPU when it is installed.

    .venv/bin/python bench/rnn.py [--rounds 7] [--hidden 128] [--batch 32] [--seq 32] [--clock cpu]

``--clock cpu`` times with the process's CPU time instead of the wall clock (on a shared machine other
processes then count less) and also prints the ratio of the fastest rounds.

Each line also gives the step's minor page faults: memory the C allocator gave back to the system and
took again. The runners share one heap, so one step's frees change where the next step's arrays land
(the eager bpcore step's ``zero_grad`` frees the gradients at the top of the heap above its freed graph,
and glibc trims it, about 1,500 faults a step; the numpy step then fits in that space, none).
``--top-pad MB`` asks glibc (mallopt M_TOP_PAD) to keep that much free memory at the heap top, so
neither runner pays for the other's frees: the engine's own cost, apart from the allocator's.

One training step = embedding, LSTM over seq steps, linear read-out, cross-entropy, backward
through time, SGD update; float32, single-threaded. Tokens per second = batch * seq / step time.
Target: bpcore within 1.4x of the numpy reference.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import resource
import statistics
import sys
import time

import numpy as np

import bpcore as bp

F = bp.nn.functional
LR = 0.1


def sigmoid(z):
    return 0.5 * (1 + np.tanh(0.5 * z))


class NumpyLSTM:
    """The whole training step in numpy: the floor for an engine built on numpy."""

    def __init__(self, params):
        self.p = {k: v.copy() for k, v in params.items()}

    def step(self, x_ids, y_ids):
        p = self.p
        emb, W_ih, W_hh, b = p["emb"], p["W_ih"], p["W_hh"], p["b_ih"] + p["b_hh"]
        n, steps = x_ids.shape
        hidden = W_hh.shape[1]
        xs = emb[x_ids]  # (n, steps, e)
        h, c = np.zeros((n, hidden), np.float32), np.zeros((n, hidden), np.float32)
        cache, hs = [], []
        for t in range(steps):
            z = xs[:, t] @ W_ih.T + h @ W_hh.T + b
            i, f = sigmoid(z[:, :hidden]), sigmoid(z[:, hidden : 2 * hidden])
            g, o = np.tanh(z[:, 2 * hidden : 3 * hidden]), sigmoid(z[:, 3 * hidden :])
            c_prev, h_prev = c, h
            c = f * c + i * g
            tc = np.tanh(c)
            h = o * tc
            cache.append((i, f, g, o, c_prev, h_prev, tc))
            hs.append(h)
        H = np.stack(hs, axis=1).reshape(n * steps, hidden)
        logits = H @ p["W_out"].T + p["b_out"]
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        rows, targets = np.arange(n * steps), y_ids.reshape(-1)
        loss = -np.log(probs[rows, targets]).mean()
        d_logits = probs
        d_logits[rows, targets] -= 1
        d_logits /= n * steps
        grads = {"W_out": d_logits.T @ H, "b_out": d_logits.sum(axis=0)}
        dH = (d_logits @ p["W_out"]).reshape(n, steps, hidden)
        dW_ih, dW_hh, db = np.zeros_like(W_ih), np.zeros_like(W_hh), np.zeros_like(b)
        d_emb = np.zeros_like(emb)
        dh_next, dc_next = np.zeros((n, hidden), np.float32), np.zeros((n, hidden), np.float32)
        for t in range(steps - 1, -1, -1):
            i, f, g, o, c_prev, h_prev, tc = cache[t]
            dh = dH[:, t] + dh_next
            dc = dc_next + dh * o * (1 - tc * tc)
            dz = np.concatenate(
                [dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g * g), dh * tc * o * (1 - o)], axis=1
            )
            dW_ih += dz.T @ xs[:, t]
            dW_hh += dz.T @ h_prev
            db += dz.sum(axis=0)
            np.add.at(d_emb, x_ids[:, t], dz @ W_ih)
            dh_next, dc_next = dz @ W_hh, dc * f
        grads.update(W_ih=dW_ih, W_hh=dW_hh, b_ih=db, b_hh=db, emb=d_emb)
        for k in p:
            p[k] -= LR * grads[k]
        return loss


class BpcoreLSTM:
    def __init__(self, params, vocab, embed, hidden):
        model = bp.nn.RecurrentNet("lstm", embed, hidden, vocab, vocab_size=vocab).to(np.float32)
        names = {
            "embedding.weight": "emb",
            "rnn.weight_ih_l0": "W_ih",
            "rnn.weight_hh_l0": "W_hh",
            "rnn.bias_ih_l0": "b_ih",
            "rnn.bias_hh_l0": "b_hh",
            "head.weight": "W_out",
            "head.bias": "b_out",
        }
        for name, param in model.named_parameters():
            param.data[...] = params[names[name]]
        self.model, self.vocab = model, vocab
        self.optimizer = bp.optim.SGD(model.parameters(), lr=LR)

    def step(self, x_ids, y_ids):
        self.optimizer.zero_grad()
        logits, _ = self.model(bp.Tensor(x_ids))
        loss = F.cross_entropy(logits.reshape(-1, self.vocab), y_ids.reshape(-1))
        loss.backward()
        self.optimizer.step()
        return loss


class TorchLSTM:
    def __init__(self, params, vocab, embed, hidden):
        import torch

        torch.set_num_threads(1)
        self.torch = torch
        self.emb = torch.nn.Embedding(vocab, embed)
        self.lstm = torch.nn.LSTM(embed, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, vocab)
        with torch.no_grad():
            self.emb.weight.copy_(torch.from_numpy(params["emb"]))
            for ours, theirs in [
                ("W_ih", "weight_ih_l0"),
                ("W_hh", "weight_hh_l0"),
                ("b_ih", "bias_ih_l0"),
                ("b_hh", "bias_hh_l0"),
            ]:
                getattr(self.lstm, theirs).copy_(torch.from_numpy(params[ours]))
            self.head.weight.copy_(torch.from_numpy(params["W_out"]))
            self.head.bias.copy_(torch.from_numpy(params["b_out"]))
        modules = [self.emb, self.lstm, self.head]
        self.optimizer = torch.optim.SGD([p for m in modules for p in m.parameters()], lr=LR)
        self.vocab = vocab

    def step(self, x_ids, y_ids):
        self.optimizer.zero_grad()
        out, _ = self.lstm(self.emb(x_ids))
        loss = self.torch.nn.functional.cross_entropy(self.head(out).reshape(-1, self.vocab), y_ids.reshape(-1))
        loss.backward()
        self.optimizer.step()
        return loss


def make_params(vocab, embed, hidden, seed=0):
    rng = np.random.default_rng(seed)
    bound = 1 / np.sqrt(hidden)

    def u(*shape, b=bound):
        return rng.uniform(-b, b, shape).astype(np.float32)

    return {
        "emb": rng.standard_normal((vocab, embed)).astype(np.float32),
        "W_ih": u(4 * hidden, embed),
        "W_hh": u(4 * hidden, hidden),
        "b_ih": u(4 * hidden),
        "b_hh": u(4 * hidden),
        "W_out": u(vocab, hidden),
        "b_out": u(vocab),
    }


def set_top_pad(megabytes: int) -> None:
    """glibc's M_TOP_PAD: the free memory kept at the heap top when it grows or is trimmed."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    if not sys.platform.startswith("linux") or not hasattr(libc, "mallopt") or not libc.mallopt(-2, megabytes << 20):
        raise SystemExit(f"--top-pad needs glibc's mallopt (M_TOP_PAD); this C library ({sys.platform}) refused it")


def main() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--embed", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=32)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--top-pad", type=int, default=0, metavar="MB",
                        help="glibc keeps this much free memory at the heap top (0: its default)")
    args = parser.parse_args()
    if args.top_pad:
        set_top_pad(args.top_pad)
    text = bp.data.char_text()
    x, y = next(bp.bptt.stream_batches(text.ids, args.batch, args.seq))
    params = make_params(text.vocab_size, args.embed, args.hidden)
    runners = {
        "numpy": (NumpyLSTM(params), (x, y)),
        "bpcore": (BpcoreLSTM(params, text.vocab_size, args.embed, args.hidden), (x, y)),
    }
    try:
        import torch

        runners["torch"] = (
            TorchLSTM(params, text.vocab_size, args.embed, args.hidden),
            (torch.from_numpy(x), torch.from_numpy(y)),
        )
    except ImportError:
        print("PyTorch is not installed: comparing with numpy only")
    losses = {name: float(runner.step(*data)) for name, (runner, data) in runners.items()}
    print("first-step losses (same weights, should agree):", {k: round(v, 5) for k, v in losses.items()})
    times = {name: [] for name in runners}
    faults = {name: [] for name in runners}
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    for _ in range(args.rounds):
        for name, (runner, data) in runners.items():
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0 = clock()
            for _ in range(3):
                runner.step(*data)
            times[name].append((clock() - t0) / 3)
            faults[name].append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 3)
    tokens = args.batch * args.seq
    print(f"LSTM hidden {args.hidden}, embed {args.embed}, batch {args.batch}, seq {args.seq}, vocab {text.vocab_size}"
          + (f", heap top pad {args.top_pad} MB" if args.top_pad else ""))
    for name, t in times.items():
        print(f"  {name:<7} {statistics.median(t) * 1e3:8.1f} ms/step  {tokens / statistics.median(t):10.0f} tokens/s"
              f"  {statistics.median(faults[name]):6.0f} page faults/step")
    ratio = statistics.median(b / n for b, n in zip(times["bpcore"], times["numpy"], strict=True))
    print(f"bpcore / numpy step time: {ratio:.2f} (target <= 1.4)")
    if args.clock == "cpu":
        print(f"fastest rounds, bpcore / numpy: {min(times['bpcore']) / min(times['numpy']):.2f}")
    if "torch" in times:
        ratio_t = statistics.median(b / t for b, t in zip(times["bpcore"], times["torch"], strict=True))
        print(f"bpcore / torch step time: {ratio_t:.2f}")


if __name__ == "__main__":
    main()
