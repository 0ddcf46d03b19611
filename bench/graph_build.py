"""Time to record a graph, per node, as it grows from 10^3 to 10^6 nodes (a chain of y = y * c).

    .venv/bin/python bench/graph_build.py [--largest 1000000]

Recording should cost the same per node at any size. Python's cyclic garbage collector runs as
objects are allocated and, in its full passes, scans every live object: the nodes of a big graph
included. The second column has the collector off, for comparison: the difference is its share.
After each size the graph is dropped and checked to be freed (a weak reference to its first node).
"""

from __future__ import annotations

import argparse
import gc
import time
import weakref

import numpy as np

import bpcore as bp


def build_seconds_per_node(nodes: int) -> float:
    x = bp.tensor(np.ones(4), requires_grad=True)
    y = x * 1.0
    first = weakref.ref(y)
    t0 = time.perf_counter()
    for _ in range(nodes - 1):
        y = y * 1.0
    seconds = (time.perf_counter() - t0) / (nodes - 1)
    del y
    if first() is not None:
        raise AssertionError(f"the graph of {nodes} nodes was not freed when its last tensor went away")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--largest", type=int, default=10**6)
    args = parser.parse_args()
    print(f"{'nodes':>10}{'us/node':>10}{'gc off':>10}")
    nodes = 10**3
    while nodes <= args.largest:
        with_gc = build_seconds_per_node(nodes)
        gc.disable()
        try:
            without_gc = build_seconds_per_node(nodes)
        finally:
            gc.enable()
        print(f"{nodes:>10}{with_gc * 1e6:>10.2f}{without_gc * 1e6:>10.2f}", flush=True)
        nodes *= 10


if __name__ == "__main__":
    main()
