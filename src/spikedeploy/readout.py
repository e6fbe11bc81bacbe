"""How a network's time-major output becomes a prediction: the one definition of each readout.

``output`` is (T, N, ...) -- spikes or voltages per step and sample. A
readout reduces it over time to one score per output neuron:

* ``spike_count``: the sum over steps (spike counts; the reference MLP);
* ``mean``: the mean over steps (TET-S, SDM);
* ``last_step``: the value at the last step (LTS, conversion, UGO).

The class is the argmax of the scores, ties to the lowest index
(``np.argmax``). Training (``models``), simulation reports (``hw_sim``,
``deploy``) and regression errors all use these functions; the names are
:data:`spikedeploy.metadata.READOUTS`.
"""
from __future__ import annotations

import numpy as np

from .errors import SpikedeployError
from .metadata import DEFAULT_READOUT, READOUTS

_REDUCE = {
    "spike_count": lambda out: out.sum(axis=0),
    "mean": lambda out: out.mean(axis=0),
    "last_step": lambda out: out[-1],
}
assert tuple(_REDUCE) == READOUTS


def readout_values(output, readout: str = DEFAULT_READOUT) -> np.ndarray:
    """The readout of (T, N, ...) outputs: (N, ...), reduced over time."""
    if readout not in _REDUCE:
        raise SpikedeployError(f"unknown readout {readout!r} ({'|'.join(READOUTS)})")
    output = np.asarray(output)
    if output.ndim < 2:
        raise SpikedeployError(f"expected time-major outputs (T, N, ...), got shape {output.shape}")
    return _REDUCE[readout](output)


def predictions(output, readout: str = DEFAULT_READOUT) -> np.ndarray:
    """Class per sample: argmax of the readout over the flattened output (ties: lowest index)."""
    values = readout_values(output, readout)
    return values.reshape(values.shape[0], -1).argmax(axis=1)


def accuracy(output, labels, readout: str = DEFAULT_READOUT) -> float:
    return float(np.mean(predictions(output, readout) == np.asarray(labels)))
