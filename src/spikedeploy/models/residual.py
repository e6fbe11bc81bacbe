"""SDM's pre-spike residual block: ``O_l = BN(Conv(SN(O_{l-1}))) + O_{l-1}``.

The block's input and output are float (membrane input currents), never
spikes: the spiking neuron comes first inside the block, and the residual is
added to the convolution's output before the *next* block's neuron. So the
next neuron sees the sum of every earlier convolution's output -- which is
how the exporter writes it: one NIR edge per summand into that neuron (NIR
sums fan-in), with BatchNorm folded into each convolution's weights and
bias. On Lava the paths have different synaptic depths; the compiler
equalises their latency.

Composite modules expose the neurons inside them with
``spiking_layers() -> {suffix: module}``: their NIR node and their record in
:func:`~spikedeploy.models.run.run_snntorch` are named
``<block name>_<suffix>``.
"""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..errors import SpikedeployError
from .neurons import IF, TSM


class PreSpikeResidual(nn.Module):
    """activation -> conv -> BatchNorm, plus the block's input (same shape).

    ``neuron``: the block's spiking layer (default :class:`IF` with threshold
    1 and reset to zero, SDM's choice), of shape (channels, H, W); wrap it in
    :class:`~spikedeploy.models.neurons.TSM` for per-step gains.
    """

    def __init__(self, channels: int, neuron: nn.Module | None = None, kernel_size: int = 3,
                 spatial=None):
        super().__init__()
        if kernel_size % 2 != 1:
            raise SpikedeployError("the residual block needs an odd kernel (same-size output)")
        if neuron is None:
            if spatial is None:
                raise SpikedeployError("give the block a neuron or its spatial size (H, W)")
            neuron = IF((channels,) + tuple(spatial))
        self.sn = neuron
        self.conv = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        return self.bn(self.conv(self.sn(x))) + x

    def spiking_layers(self) -> dict[str, nn.Module]:
        return {"sn": self.sn}


def residual_trunk(c_in: int, channels: int, blocks: int, spatial, num_steps: int, tsm: bool,
                   threshold: float = 1.0) -> OrderedDict:
    """SDM's trunk shared by the classifier and the denoiser:
    conv0 -> bn0 -> ``blocks`` pre-spike residual blocks -> sn_out (IF, TSM-wrapped if asked)."""
    shape = (channels,) + tuple(spatial)

    def neuron():
        n = IF(shape, threshold=threshold)
        return TSM(n, num_steps) if tsm else n

    layers = OrderedDict(conv0=nn.Conv2d(c_in, channels, 3, padding=1, bias=False),
                         bn0=nn.BatchNorm2d(channels))
    for b in range(1, blocks + 1):
        layers[f"block{b}"] = PreSpikeResidual(channels, neuron())
    layers["sn_out"] = neuron()
    return layers
