"""Time to record a graph, per node, as it grows from 10^3 to 10^6 nodes (a chain of y = y * c).

    .venv/bin/python bench/graph_build.py [--largest 1000000] [--clock cpu]

Recording should cost the same per node at any size. Python's cyclic garbage collector runs as
objects are allocated and, in its full passes, scans every live object: the nodes of a big graph
included. A recorded op leaves it two objects to track (tests/test_graph_memory.py), and while
tensors are being made bpcore lets a full pass wait until the memory in use has about doubled
(``bpcore.tensor._FullPassPacing``). The second column has the collector off, for comparison: the
difference is its share.
After each size the graph is dropped and checked to be freed (a weak reference to its first node).
On a machine shared with other work, ``--clock cpu`` counts this process's CPU time instead of the
wall clock (the time spent waiting for a core left out).
"""

from __future__ import annotations

import argparse
import gc
import time
import weakref

import numpy as np

import bpcore as bp


def build_seconds_per_node(nodes: int, clock=time.perf_counter) -> float:
    x = bp.tensor(np.ones(4), requires_grad=True)
    y = x * 1.0
    first = weakref.ref(y)
    t0 = clock()
    for _ in range(nodes - 1):
        y = y * 1.0
    seconds = (clock() - t0) / (nodes - 1)
    del y
    if first() is not None:
        raise AssertionError(f"the graph of {nodes} nodes was not freed when its last tensor went away")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--largest", type=int, default=10**6)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    print(f"{'nodes':>10}{'us/node':>10}{'gc off':>10}")
    nodes = 10**3
    while nodes <= args.largest:
        with_gc = build_seconds_per_node(nodes, clock)
        gc.disable()
        try:
            without_gc = build_seconds_per_node(nodes, clock)
        finally:
            gc.enable()
        print(f"{nodes:>10}{with_gc * 1e6:>10.2f}{without_gc * 1e6:>10.2f}", flush=True)
        nodes *= 10


if __name__ == "__main__":
    main()
