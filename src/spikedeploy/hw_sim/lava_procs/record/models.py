"""Floating-point and fixed-point models of RecordSink (identical logic, different dtypes)."""
import os

import numpy as np

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from spikedeploy.hw_sim.lava_procs.record.process import RecordSink


class _RecordSink(PyLoihiProcessModel):
    DTYPE = np.float64

    def __init__(self, proc_params=None):
        super().__init__(proc_params)
        self.path = proc_params["path"]
        length = proc_params["buffer"]
        self.record = np.zeros(tuple(proc_params["shape"]) + (length,), dtype=self.DTYPE)

    def run_spk(self):
        length = self.record.shape[-1]
        self.record[..., (self.time_step - 1) % length] = self.a_in.recv()
        if self.time_step == length:
            tmp = f"{self.path}.tmp.npy"
            np.save(tmp, self.record)
            os.replace(tmp, self.path)


@implements(proc=RecordSink, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyRecordSinkFloat(_RecordSink):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)


@implements(proc=RecordSink, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PyRecordSinkFixed(_RecordSink):
    DTYPE = np.int64
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
