"""Process of the generalised current-based neuron, run sample by sample.

One population of the neuron defined in :mod:`spikedeploy.ir.semantics`
(floating point) and :mod:`spikedeploy.ir.fixed_point` (Loihi integer
arithmetic). Lava's stock LIF has one threshold per population, resets to 0,
and cannot restart its state per sample; this process adds, per neuron,
thresholds, reset voltage, subtractive reset, initial voltage and an input
bias, and runs many samples back to back in windows of ``window`` steps:

* window step p < latency: the sample's first input has not arrived yet;
  the neuron holds its initial state and emits nothing (stale values still
  in the synapses from the previous sample are ignored);
* p == latency: state restarts (u = 0, v = v_init), then updates normally;
* latency <= p < latency + num_steps: normal update;
* later steps: nothing is emitted until the next window.

``step_gain`` holds the TSM gain p[t] per time step of the sample
(``has_step_gain`` = 0: no TSM, the gain is not applied at all).
"""
import numpy as np

from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class WindowedNeuron(AbstractProcess):
    def __init__(self, *, shape, du, dv, gain, bias_mant, bias_exp, input_bias, vth,
                 v_reset, v_init, spiking, subtract_reset, window, latency, num_steps,
                 step_gain=None, name=None):
        super().__init__(shape=shape, name=name)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.u = Var(shape=shape, init=0)
        self.v = Var(shape=shape, init=0)
        for key, value in dict(du=du, dv=dv, gain=gain, bias_mant=bias_mant,
                               bias_exp=bias_exp, input_bias=input_bias, vth=vth,
                               v_reset=v_reset, v_init=v_init).items():
            setattr(self, key, Var(shape=shape, init=np.broadcast_to(value, shape).copy()))
        self.spiking = Var(shape=(1,), init=int(spiking))
        self.subtract_reset = Var(shape=(1,), init=int(subtract_reset))
        self.window = Var(shape=(1,), init=int(window))
        self.latency = Var(shape=(1,), init=int(latency))
        self.num_steps = Var(shape=(1,), init=int(num_steps))
        self.has_step_gain = Var(shape=(1,), init=int(step_gain is not None))
        gains = np.ones(num_steps) if step_gain is None else np.asarray(step_gain)[:num_steps]
        self.step_gain = Var(shape=(num_steps,), init=gains)
