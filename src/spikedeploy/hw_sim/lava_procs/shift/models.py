"""Floating-point and fixed-point models of Shift (identical logic, different dtypes)."""
import numpy as np

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from spikedeploy.hw_sim.lava_procs.shift.process import Shift


class _Shift(PyLoihiProcessModel):
    def _delayed(self):
        depth = self.buffer.shape[0]
        rows = (self.time_step - 1 - self.delays) % depth
        return self.buffer[rows, np.arange(self.delays.size)]

    def _store(self, x):
        self.buffer[(self.time_step - 1) % self.buffer.shape[0]] = x

    def run_spk(self):
        if self.delays.min() >= 1:      # send first: breaks cycles like a synapse
            self.s_out.send(self._delayed())
            self._store(self.a_in.recv())
        else:
            self._store(self.a_in.recv())
            self.s_out.send(self._delayed())


@implements(proc=Shift, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyShiftFloat(_Shift):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    delays: np.ndarray = LavaPyType(np.ndarray, int)
    buffer: np.ndarray = LavaPyType(np.ndarray, float)


@implements(proc=Shift, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PyShiftFixed(_Shift):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    delays: np.ndarray = LavaPyType(np.ndarray, int)
    buffer: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
