"""Process of the generalised current-based neuron, run sample by sample.

One population of the neuron defined in :mod:`spikedeploy.ir.semantics`
(floating point) and :mod:`spikedeploy.ir.fixed_point` (Loihi integer
arithmetic). Lava's stock LIF has one threshold per population, resets to 0,
and cannot restart its state per sample; this process holds every
parameter of :class:`~spikedeploy.ir.semantics.NeuronParams` (one Var per
field: per neuron, or the index of a population value among its choices,
so a new parameter needs no edit here), and runs many
samples back to back in windows of ``window`` steps:

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

from spikedeploy.ir.semantics import NeuronParams


class WindowedNeuron(AbstractProcess):
    def __init__(self, *, shape, params: NeuronParams, window, latency, num_steps, name=None):
        super().__init__(shape=shape, name=name)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.u = Var(shape=shape, init=0)
        self.v = Var(shape=shape, init=0)
        for f in NeuronParams.per_neuron_fields():
            value = getattr(params, f.name)
            init = np.broadcast_to(0 if value is None else value, shape).copy()
            setattr(self, f.name, Var(shape=shape, init=init))
        for f in NeuronParams.population_fields():
            setattr(self, f.name, Var(shape=(1,), init=f.metadata["choices"].index(
                getattr(params, f.name))))
        self.spiking = Var(shape=(1,), init=int(params.spiking))
        self.window = Var(shape=(1,), init=int(window))
        self.latency = Var(shape=(1,), init=int(latency))
        self.num_steps = Var(shape=(1,), init=int(num_steps))
        gains = params.step_gain
        self.has_step_gain = Var(shape=(1,), init=int(gains is not None))
        gains = np.ones(num_steps) if gains is None else np.asarray(gains)[:num_steps]
        self.step_gain = Var(shape=(num_steps,), init=gains)
