"""Shift: y[t] = x[t - d_i] per element, where x is the sum of all incoming connections.

Used by the compiler for three things that Lava's stock processes lack:

* NIR ``Delay`` nodes (per-element delays in whole steps);
* delay equalisation: where paths of different Lava latency meet (residual
  and skip connections), the shorter paths get a Shift of the difference;
  a recurrent edge whose cycle has fewer synaptic hops than it needs gets
  one too;
* summing several edges into a node without a process of its own (an
  Output or Flatten with several inputs): a Shift with d = 0.

With every d_i >= 1 the model sends before it receives, so a Shift breaks a
cycle of processes exactly as Lava's Dense does (no deadlock). The values
pass through unchanged (spikes, graded floats or fixed-point integers).
"""
import numpy as np

from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class Shift(AbstractProcess):
    def __init__(self, *, shape, delays, name=None):
        super().__init__(shape=shape, name=name)
        delays = np.broadcast_to(np.asarray(delays, dtype=int), shape).copy()
        depth = int(delays.max(initial=0)) + 1
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.delays = Var(shape=shape, init=delays)
        self.buffer = Var(shape=(depth,) + tuple(shape), init=0)
