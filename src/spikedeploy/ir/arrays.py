"""The array functions the one-definition updates use, for numpy arrays and torch tensors alike.

The neuron updates of :mod:`.semantics` and :mod:`.fixed_point` are written once and run on
numpy (the Lava process models, the numpy engine) and on torch tensors (the torch engine, CPU
or CUDA). Operators (+, *, >>, &, comparisons) are shared by both; the few functions whose
spelling differs are looked up here from the array's type, so ``ir`` needs no torch import.
"""
from __future__ import annotations

import sys

import numpy as np


def namespace(x):
    """numpy, or torch for a torch tensor (torch is already imported when one exists)."""
    return np if isinstance(x, np.ndarray) or np.isscalar(x) else sys.modules["torch"]


def cast(x, like):
    """``x`` with the element type of ``like`` (e.g. a boolean mask as 0/1 values)."""
    return x.astype(like.dtype) if isinstance(x, np.ndarray) else x.to(like.dtype)


def any_true(mask) -> bool:
    """Whether any element of a boolean array (or a plain bool) is true."""
    return bool(mask.any()) if hasattr(mask, "any") else bool(mask)


def any_nonzero(x) -> bool:
    return any_true(x != 0)


def all_equal(x, value) -> bool:
    return not any_true(x != value)


def clone(x):
    return x.copy() if isinstance(x, np.ndarray) else x.clone()


def assign_where(dst, mask, value) -> None:
    """dst = value where mask, in place (``value``: a number, or an array that broadcasts
    against ``dst``)."""
    if isinstance(dst, np.ndarray):
        if isinstance(value, float):
            np.putmask(dst, mask, value)       # numpy's fastest masked store of one value
        else:
            np.copyto(dst, value, where=mask)
    elif isinstance(value, float):
        dst.masked_fill_(mask, value)
    else:
        namespace(dst).where(mask, value, dst, out=dst)


def reset_where(v, mask, spikes, value) -> None:
    """v = value where mask, in place; ``spikes`` is the mask as 0/1 values of v's type. A
    reset of many neurons to 0 is v -= spikes * v (v - 1*v = +0 exactly, v - 0*v = v; only
    a -0.0 may become +0.0): about twice as fast as a masked store from 4096 values on, in
    numpy and torch; below that the one masked store is quicker."""
    if type(value) is float:
        if isinstance(v, np.ndarray):
            if value == 0.0 and v.size >= 4096:
                v -= spikes * v
            else:
                np.putmask(v, mask, value)
        elif value == 0.0 and v.numel() >= 4096:
            v -= spikes * v
        else:
            v.masked_fill_(mask, value)
    else:
        assign_where(v, mask, value)
