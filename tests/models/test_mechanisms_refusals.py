"""What NIR cannot express is refused at export with a one-line error naming the layer:
STA's spike-spike products (TCSA), LayerNorm, GroupNorm, softmax, attention, max pooling of
currents."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from spikedeploy.errors import UnsupportedError
from spikedeploy.export import export_model
from spikedeploy.models import run_snntorch
from spikedeploy.models.neurons import IF
from spikedeploy.models.sta import TCSA


@pytest.mark.parametrize("layer, shape, what", [
    (TCSA(), (2, 4), "spike-spike product"),
    (nn.LayerNorm(4), (4,), "LayerNorm"),
    (nn.GroupNorm(2, 4), (4, 3, 3), "GroupNorm"),
    (nn.Softmax(dim=1), (4,), "softmax"),
    (nn.MultiheadAttention(4, 1), (4,), "attention"),
    (nn.MaxPool2d(2), (4, 4, 4), "AvgPool2d"),
], ids=["tcsa", "layernorm", "groupnorm", "softmax", "attention", "maxpool"])
def test_unsupported_mechanisms_are_refused_by_layer_name(layer, shape, what):
    before = nn.Identity() if isinstance(layer, nn.MaxPool2d) else IF(shape)   # max of currents
    model = nn.Sequential(OrderedDict(if1=before, bad=layer))
    with pytest.raises(UnsupportedError) as info:
        export_model(model, shape)
    message = str(info.value)
    assert info.value.node == "bad" and "'bad'" in message and what in message
    assert type(layer).__name__ in message and "\n" not in message


def test_a_refused_layer_inside_a_custom_block_is_named():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.norm = nn.LayerNorm(4)

        def forward(self, x):
            return self.norm(self.fc(x))

    with pytest.raises(UnsupportedError, match=r"node 'enc_norm'.*LayerNorm"):
        export_model(nn.Sequential(OrderedDict(enc=Block(), if1=IF(4))), (4,))


def test_tcsa_estimates_the_product_of_two_spike_rates():
    rng = np.random.default_rng(0)
    steps = 16
    spikes = (rng.random((steps, 5, 2, 3)) < rng.uniform(0.1, 0.9, (1, 5, 2, 3))).astype(float)
    out = run_snntorch(nn.Sequential(OrderedDict(tcsa=TCSA())), spikes, batch_size=2)["output"]
    rates = spikes.mean(axis=0)
    np.testing.assert_allclose(out[-1], rates[:, 0] * rates[:, 1], rtol=1e-12)   # reset per batch
    x = torch.from_numpy(spikes[0, :, 0])
    with pytest.raises(Exception, match="two spike streams"):
        TCSA()(x)
