"""RecordSink: a sink that hands its whole record over in one file.

Lava 0.10's RingBuffer sink keeps what it receives in a Var, and reading a
Var from the host (``sink.data.get()``) costs one message per value (about
22 us each here: most of a run that records every layer). RecordSink keeps
the same buffer -- values received at step t in column (t - 1) mod buffer --
and, in the step that fills it, writes it to ``path`` (``.npy``, written
to a temporary name and renamed, so a reader sees the whole file or none).
The host reads that file after the run: one transfer, the same values.
"""
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess


class RecordSink(AbstractProcess):
    def __init__(self, *, shape, buffer, path, name=None):
        super().__init__(shape=shape, buffer=int(buffer), path=str(path), name=name)
        self.a_in = InPort(shape=shape)
