"""Where every tap of a 2-D convolution reads its input: the one definition.

A convolution (NIR Conv2d/Conv1d, and pooling as a fixed depthwise one) has
kernel tap k of output position o, along each spatial axis, read input
position ``o * stride - pad_before + k * dilation`` (PyTorch's
cross-correlation); positions outside the input read the zero padding. The
output length is the number of positions whose first tap starts inside the
padded input. Everything else -- the equivalent sparse matrix, the
reference simulator's im2col gather, the energy model's fan-out -- is
derived here from :meth:`ConvGeometry.input_positions`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SpikedeployError


def output_length(size: int, kernel: int, stride: int, pads: tuple, dilation: int) -> int:
    """Output positions along one axis (pads = (before, after)); < 1 is an error."""
    return (size + pads[0] + pads[1] - dilation * (kernel - 1) - 1) // stride + 1


@dataclass(frozen=True)
class ConvGeometry:
    """Shapes and tap layout of one 2-D convolution (batch excluded, C order)."""

    in_shape: tuple          # (C_in, H, W)
    channels_out: int
    kernel: tuple            # (kH, kW)
    stride: tuple = (1, 1)
    padding: tuple = ((0, 0), (0, 0))    # ((top, bottom), (left, right))
    dilation: tuple = (1, 1)
    groups: int = 1

    @property
    def out_shape(self) -> tuple:
        """(C_out, H_out, W_out); raises for a kernel larger than its padded input."""
        lengths = tuple(output_length(size, k, s, p, d) for size, k, s, p, d in zip(
            self.in_shape[1:], self.kernel, self.stride, self.padding, self.dilation))
        if min(lengths) < 1:
            raise SpikedeployError(f"kernel {self.kernel} (dilation {self.dilation}) is larger "
                                   f"than its padded input {self.in_shape[1:]}")
        return (self.channels_out,) + lengths

    @property
    def in_size(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def out_size(self) -> int:
        return int(np.prod(self.out_shape))

    def input_positions(self, axis: int) -> np.ndarray:
        """(kernel, output) array: the input position tap k of output o reads on ``axis``
        (0: height, 1: width); outside [0, size) means padding."""
        out = self.out_shape[1 + axis]
        k = np.arange(self.kernel[axis])[:, None]
        o = np.arange(out)[None, :]
        return o * self.stride[axis] - self.padding[axis][0] + k * self.dilation[axis]

    def in_bounds(self, axis: int) -> np.ndarray:
        pos = self.input_positions(axis)
        return (pos >= 0) & (pos < self.in_shape[1 + axis])

    def tap_hits(self, axis: int) -> np.ndarray:
        """A[k, i] = 1 where tap k of some output position reads input position i (0 or 1:
        for a given tap and input position at most one output position matches)."""
        pos, ok = self.input_positions(axis), self.in_bounds(axis)
        hits = np.zeros((self.kernel[axis], self.in_shape[1 + axis]), np.int64)
        k = np.broadcast_to(np.arange(self.kernel[axis])[:, None], pos.shape)
        hits[k[ok], pos[ok]] = 1
        return hits

    def gather_index(self) -> np.ndarray:
        """(groups, C_in/groups * kH * kW, H_out * W_out): flat input index of every tap of
        every output position per group; taps on the padding index ``in_size`` (a zero slot)."""
        cin, h, w = self.in_shape
        kh, kw = self.kernel
        iy, ix = self.input_positions(0), self.input_positions(1)        # (kh, ho), (kw, wo)
        ok = self.in_bounds(0)[:, None, :, None] & self.in_bounds(1)[None, :, None, :]
        flat = iy[:, None, :, None] * w + ix[None, :, None, :]           # (kh, kw, ho, wo)
        flat = np.where(ok, flat, -1)
        ci = np.arange(cin)[:, None, None, None, None]
        index = np.where(flat >= 0, ci * h * w + flat, self.in_size)     # (cin, kh, kw, ho, wo)
        return index.reshape(self.groups, (cin // self.groups) * kh * kw, -1)

    def taps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(output index, input index, kernel index) of every in-bounds tap: the
        equivalent (out_size, in_size) matrix holds weight.flat[kernel index] there."""
        cout = self.channels_out
        cin_g = self.in_shape[0] // self.groups
        kh, kw = self.kernel
        _, ho, wo = self.out_shape
        gather = self.gather_index()                          # (g, cin_g*kh*kw, ho*wo)
        g_out = cout // self.groups
        co = np.arange(cout)
        index = gather[co // g_out]                           # (cout, cin_g*kh*kw, ho*wo)
        rows = np.broadcast_to((co[:, None, None] * ho * wo + np.arange(ho * wo)[None, None, :]),
                               index.shape)
        kidx = np.broadcast_to((co[:, None, None] * cin_g * kh * kw
                                + np.arange(cin_g * kh * kw)[None, :, None]), index.shape)
        ok = index < self.in_size
        return rows[ok], index[ok], kidx[ok]
