"""Floating-point and bit-accurate (fixed_pt) models of WindowedNeuron.

The floating-point update is ``spikedeploy.ir.semantics.neuron_step``; the
fixed-point one is Lava's PyLifModelBitAcc arithmetic
(``spikedeploy.ir.fixed_point.neuron_step_fixed``). Both are imported rather
than restated, so the reference simulator and Lava run the same code.
"""
import numpy as np

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from spikedeploy.hw_sim.lava_procs.neuron.process import WindowedNeuron
from spikedeploy.ir.fixed_point import FixedNeuron, neuron_step_fixed
from spikedeploy.ir.semantics import NeuronParams, neuron_step


class _Windowed(PyLoihiProcessModel):
    """Window bookkeeping shared by both precisions."""

    def _phase(self):
        """(restart now?, active now?, time step within the sample)."""
        window, latency = int(self.window[0]), int(self.latency[0])
        p = (self.time_step - 1) % window
        return p == latency, latency <= p < latency + int(self.num_steps[0]), p - latency

    def _gains(self, dtype):
        return np.asarray(self.step_gain, dtype) if self.has_step_gain[0] else None

    def run_spk(self):
        a = self.a_in.recv()
        restart, active, t = self._phase()
        if restart:
            self.u[:] = 0
            self.v[:] = self.v_init
        if active:
            out = self._update(a, t)
        else:
            out = np.zeros(self.u.shape, dtype=self.u.dtype)
        self.s_out.send(out)


@implements(proc=WindowedNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyWindowedNeuronFloat(_Windowed):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    u: np.ndarray = LavaPyType(np.ndarray, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    du: np.ndarray = LavaPyType(np.ndarray, float)
    dv: np.ndarray = LavaPyType(np.ndarray, float)
    gain: np.ndarray = LavaPyType(np.ndarray, float)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, float)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, float)   # ignored, as in Lava's LIF
    input_bias: np.ndarray = LavaPyType(np.ndarray, float)
    vth: np.ndarray = LavaPyType(np.ndarray, float)
    v_reset: np.ndarray = LavaPyType(np.ndarray, float)
    v_init: np.ndarray = LavaPyType(np.ndarray, float)
    spiking: np.ndarray = LavaPyType(np.ndarray, int)
    subtract_reset: np.ndarray = LavaPyType(np.ndarray, int)
    window: np.ndarray = LavaPyType(np.ndarray, int)
    latency: np.ndarray = LavaPyType(np.ndarray, int)
    num_steps: np.ndarray = LavaPyType(np.ndarray, int)
    has_step_gain: np.ndarray = LavaPyType(np.ndarray, int)
    step_gain: np.ndarray = LavaPyType(np.ndarray, float)

    def _update(self, a, t):
        p = NeuronParams(du=self.du, dv=self.dv, gain=self.gain, bias=self.bias_mant,
                         v_th=self.vth if self.spiking[0] else None, v_reset=self.v_reset,
                         v_init=self.v_init, input_bias=self.input_bias,
                         reset_mode="subtract" if self.subtract_reset[0] else "zero",
                         step_gain=self._gains(np.float64))
        u, v, out = neuron_step(self.u, self.v, a, p, t)
        self.u[:] = u
        self.v[:] = v
        return out


@implements(proc=WindowedNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PyWindowedNeuronBitAcc(_Windowed):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    u: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    du: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=12)
    dv: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=12)
    gain: np.ndarray = LavaPyType(np.ndarray, np.int32)      # folded into weights
    bias_mant: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=13)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=3)
    input_bias: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    vth: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=17)
    v_reset: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    v_init: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    spiking: np.ndarray = LavaPyType(np.ndarray, int)
    subtract_reset: np.ndarray = LavaPyType(np.ndarray, int)
    window: np.ndarray = LavaPyType(np.ndarray, int)
    latency: np.ndarray = LavaPyType(np.ndarray, int)
    num_steps: np.ndarray = LavaPyType(np.ndarray, int)
    has_step_gain: np.ndarray = LavaPyType(np.ndarray, int)
    step_gain: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def _update(self, a, t):
        p = FixedNeuron(du=self.du.astype(np.int64), dv=self.dv.astype(np.int64),
                        bias_mant=self.bias_mant.astype(np.int64),
                        bias_exp=self.bias_exp.astype(np.int64),
                        vth=self.vth if self.spiking[0] else None,
                        v_reset=self.v_reset.astype(np.int64), v_init=self.v_init,
                        input_bias=self.input_bias.astype(np.int64),
                        reset_mode="subtract" if self.subtract_reset[0] else "zero", scale=1.0,
                        step_gain=self._gains(np.int64))
        u, v, out = neuron_step_fixed(self.u.astype(np.int64), self.v.astype(np.int64),
                                      np.asarray(a, np.int64), p, t)
        self.u[:] = u
        self.v[:] = v
        return out.astype(np.int32)
