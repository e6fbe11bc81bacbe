"""Floating-point and bit-accurate (fixed_pt) models of WindowedNeuron.

The floating-point update is ``spikedeploy.ir.semantics.neuron_step``; the
fixed-point one is Lava's PyLifModelBitAcc arithmetic
(``spikedeploy.ir.fixed_point.neuron_step_fixed``). Both are imported rather
than restated, so the reference simulator and Lava run the same code. The
parameter Vars are declared from NeuronParams' fields (their Lava precision
is the field's ``bits``).
"""
import numpy as np

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from spikedeploy.hw_sim.lava_procs.neuron.process import WindowedNeuron
from spikedeploy.ir.fixed_point import neuron_step_fixed
from spikedeploy.ir.semantics import NeuronParams, neuron_step


def _with_param_vars(fixed: bool):
    """Class decorator: one LavaPyType per NeuronParams field (population values: an index)."""
    def declare(cls):
        for f in NeuronParams.per_neuron_fields():
            setattr(cls, f.name, LavaPyType(np.ndarray, np.int32, precision=f.metadata["bits"])
                    if fixed else LavaPyType(np.ndarray, float))
        for f in NeuronParams.population_fields():
            setattr(cls, f.name, LavaPyType(np.ndarray, int))
        return cls
    return declare


class _Windowed(PyLoihiProcessModel):
    """Window bookkeeping shared by both precisions (Lava finds inherited Var types too)."""

    spiking: np.ndarray = LavaPyType(np.ndarray, int)
    window: np.ndarray = LavaPyType(np.ndarray, int)
    latency: np.ndarray = LavaPyType(np.ndarray, int)
    num_steps: np.ndarray = LavaPyType(np.ndarray, int)
    has_step_gain: np.ndarray = LavaPyType(np.ndarray, int)

    dtype = np.float64
    update_rule = staticmethod(neuron_step)

    def _phase(self):
        """(restart now?, active now?, time step within the sample)."""
        window, latency = int(self.window[0]), int(self.latency[0])
        p = (self.time_step - 1) % window
        return p == latency, latency <= p < latency + int(self.num_steps[0]), p - latency

    def _params(self) -> NeuronParams:
        values = {f.name: np.asarray(getattr(self, f.name), self.dtype)
                  for f in NeuronParams.per_neuron_fields()}
        if not self.spiking[0]:
            values["v_th"] = None
        for f in NeuronParams.population_fields():
            values[f.name] = f.metadata["choices"][int(getattr(self, f.name)[0])]
        gains = np.asarray(self.step_gain, self.dtype) if self.has_step_gain[0] else None
        return NeuronParams(**values, step_gain=gains)

    def run_spk(self):
        a = self.a_in.recv()
        restart, active, t = self._phase()
        if restart:
            self.u[:] = 0
            self.v[:] = self.v_init
        if active:
            u, v, out = self.update_rule(self.u.astype(self.dtype), self.v.astype(self.dtype),
                                         np.asarray(a, self.dtype), self._params(), t)
            self.u[:] = u
            self.v[:] = v
        else:
            out = np.zeros(self.u.shape, dtype=self.u.dtype)
        self.s_out.send(out.astype(self.u.dtype))


@implements(proc=WindowedNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
@_with_param_vars(fixed=False)
class PyWindowedNeuronFloat(_Windowed):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    u: np.ndarray = LavaPyType(np.ndarray, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    step_gain: np.ndarray = LavaPyType(np.ndarray, float)


@implements(proc=WindowedNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
@_with_param_vars(fixed=True)
class PyWindowedNeuronBitAcc(_Windowed):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    u: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    step_gain: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    dtype = np.int64
    update_rule = staticmethod(neuron_step_fixed)
