"""STA's temporal-collaborative spike-spike product (TCSA), for training only.

Spatio-Temporal Approximation (ICLR 2024) multiplies two spike streams a and
b (for attention's Q K^T) with an estimate-and-correct rule: at step t the
running product of their rates is corrected by the new spikes,

    P[t] = P[t-1] + a[t] * B[t] + A[t-1] * b[t],   A[t] = sum_{s<=t} a[s],  B likewise

so P[T-1] = A[T-1] * B[T-1] exactly; the module outputs P[t] / (t+1)^2, the
product of the running rates. It is a product of two activations: no NIR
primitive can express it (NIR edges only add weighted inputs), so
:func:`spikedeploy.export.export_model` refuses it with an error naming
the layer, as it refuses LayerNorm, GroupNorm and softmax.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import SpikedeployError


class TCSA(nn.Module):
    """Product of two spike streams: input (N, 2, *shape) -> output (N, *shape)."""

    layer_prefix = "tcsa"
    stateful = True          # reset_state() resets it per sample

    def __init__(self):
        super().__init__()
        self.reset_mem()

    def reset_mem(self) -> None:
        self.a_sum = self.b_sum = self.product = None
        self.t = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim < 2 or x.shape[1] != 2:
            raise SpikedeployError(f"TCSA expects (N, 2, ...) -- two spike streams -- got {tuple(x.shape)}")
        a, b = x[:, 0], x[:, 1]
        if self.a_sum is None:
            self.a_sum, self.b_sum, self.product = (torch.zeros_like(a) for _ in range(3))
        previous_a = self.a_sum
        self.a_sum = self.a_sum + a
        self.b_sum = self.b_sum + b
        self.product = self.product + a * self.b_sum + previous_a * b
        self.t += 1
        return self.product / float(self.t * self.t)
