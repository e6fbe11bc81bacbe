"""Lava timing of a Program: per-op latency, and the delays that equalise paths.

Pure numpy (no Lava import), so ``check`` can report latencies without Lava.

In Lava every synaptic process (Dense, Sparse, Conv) sends at step t what it
accumulated at step t - 1; neurons, sources and Shift processes with d = 0
act within the step. So an op's *latency* -- the window position at which
its output for input step 0 appears -- is the latency of its inputs plus 1
for a synaptic op. An op *consumes* its inputs at ``latency - hop``.

An edge (src -> op) must deliver src's value for the step op is computing
(forward edge) or for the step before (recurrent edge), so it needs
``d = consume(op) - latency(src) (+ 1 if recurrent)`` extra steps, which
the compiler supplies with a Shift process. d < 0 cannot be fixed by
delaying (a cycle with more synaptic hops than one step allows) and is
refused. The reference simulator is latency-free; nothing here changes
the meaning of the graph.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UnsupportedError
from ..ir.ops import Op, Program


@dataclass
class Schedule:
    latency: dict[str, int]
    edge_delay: dict[tuple, int] = field(default_factory=dict)   # (src, dst) -> steps, only > 0
    delay_steps: int = 0          # room NIR Delay nodes need at the end of a window

    @property
    def total_latency(self) -> int:
        return max(self.latency.values(), default=0)

    def window(self, num_steps: int) -> int:
        return num_steps + self.total_latency + self.delay_steps


def hop(op: Op) -> int:
    """Steps a Lava process for ``op`` adds: 1 for a synaptic op, else 0."""
    return 1 if op.synaptic else 0


def schedule(program: Program, collect: list | None = None) -> Schedule:
    """Latencies and equalising delays; ``collect``: append problems instead of raising."""
    lat: dict[str, int] = {}
    delays: dict[tuple, int] = {}
    for op in program.ops.values():
        if op.name in program.inputs:
            lat[op.name] = 0
            continue
        forward = [s for s in op.inputs if s not in op.recurrent]
        arrive = max(lat[s] for s in forward)
        for s in forward:
            if arrive > lat[s]:
                delays[(s, op.name)] = arrive - lat[s]
        lat[op.name] = arrive + hop(op)
    for op in program.ops.values():
        for src in op.recurrent:
            d = lat[op.name] - hop(op) - lat[src] + 1
            if d < 0:
                exc = UnsupportedError(
                    op.name, "recurrent",
                    f"the cycle through '{src}' has {lat[src] - lat[op.name] + hop(op)} synaptic hops "
                    "but must deliver the previous step's value (at most 1 hop); Lava cannot "
                    "run it faster", backend="lava")
                if collect is None:
                    raise exc
                collect.append(exc)
                continue
            if d > 0:
                delays[(src, op.name)] = d
    extra = sum(op.max_delay for op in program.ops.values())
    return Schedule(lat, delays, extra)
