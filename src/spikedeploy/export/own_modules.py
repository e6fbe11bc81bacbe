"""spikedeploy's own modules (:mod:`spikedeploy.models.neurons`, the composites) -> NIR.

* ``IF`` / ``LIF`` / ``IMPLIF`` -> ``nir.IF`` (beta = 1, r = 1/dt so g = 1)
  or ``nir.LIF`` (tau = dt/(1-beta), r = tau/dt), v_reset = 0. What NIR has
  no field for goes into node metadata (keys in :mod:`spikedeploy.metadata`,
  honoured by the reference simulator and the Lava process ``WindowedNeuron``):

  ============================ ===============================================
  ``spikedeploy.reset_mode``   "subtract": v -= v_threshold on a spike, in the
                               spike's step (written only for subtractive reset)
  ``spikedeploy.v_init``       float64 array, layer shape: the voltage at the
                               start of every sample (IMP v0, conversion s/2;
                               written only when non-zero)
  ``spikedeploy.tsm_gain``     float64 array (T,): the TSM gain p[t]; the
                               update is u[t] = g * p[t] * (a[t] + c)
  ============================ ===============================================

* ``TSM(neuron)`` -> the wrapped neuron's node plus ``spikedeploy.tsm_gain``.
* ``Readout(beta)`` -> ``nir.LI`` (tau = dt/(1-beta), r = tau/dt: v = beta*v + I)
  or, for beta = 1, ``nir.I`` (r = 1/dt: v = v + I). Outputs its voltage.
* ``PreSpikeResidual`` (block ``B``) -> ``B_sn`` (its neuron) -> ``B_conv``
  (conv with BN folded); the block's output is ``B_conv`` *and* the block's
  input sources: the next layer gets one edge from each.
* ``SpikingUGO`` (block ``U``) -> ``U_fc_in`` -> ``U_sn`` -> ``U_fc_out`` -> ``U_acc``.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..metadata import RESET_MODE, TSM_GAIN, V_INIT
from ..models.neurons import IF, IMPLIF, LIF, TSM, Readout
from ..models.residual import PreSpikeResidual
from ..models.ugo import SpikingUGO
from .layers import INPUT, Block, conv_node, convert_layer, register_converter
from .neuron_nodes import decay, float64, leaky_node, per_neuron


def _module_shape(name, module, in_shape) -> tuple:
    if tuple(module.shape) != tuple(in_shape):
        raise UnsupportedError(name, "shape", f"the neuron layer has shape {tuple(module.shape)}, "
                               f"its input has shape {tuple(in_shape)}")
    return tuple(in_shape)


@register_converter(LIF, IF, IMPLIF)
def _lif_module(name, module: LIF, in_shape, dt):
    shape = _module_shape(name, module, in_shape)
    beta = decay(name, "beta", module.beta, shape)
    threshold = per_neuron(name, "threshold", module.threshold, shape)
    if not np.all(np.isfinite(threshold)):
        raise UnsupportedError(name, "threshold", "thresholds must be finite")
    v_init = per_neuron(name, "v_init", module.v_init, shape)
    if not np.all(np.isfinite(v_init)):
        raise UnsupportedError(name, "v_init", "initial voltages must be finite")
    metadata = {}
    if module.reset_mechanism == "subtract":
        metadata[RESET_MODE] = "subtract"
    elif module.reset_mechanism != "zero":
        raise UnsupportedError(name, "reset_mechanism", f"unknown reset {module.reset_mechanism!r}")
    if np.any(v_init != 0):
        metadata[V_INIT] = v_init
    return leaky_node(name, beta, threshold, dt, metadata), shape


@register_converter(Readout)
def _readout(name, module: Readout, in_shape, dt):
    shape = _module_shape(name, module, in_shape)
    beta = decay(name, "beta", module.beta, shape)
    if np.any(beta == 1.0) and not np.all(beta == 1.0):
        raise UnsupportedError(name, "beta", "mixes beta = 1 (NIR I) with leaky (NIR LI) readouts")
    return leaky_node(name, beta, None, dt), shape


@register_converter(TSM)
def _tsm(name, module: TSM, in_shape, dt):
    inner = convert_layer(name, module.neuron, in_shape, dt)
    if isinstance(inner, Block) or inner[0] is None:
        raise UnsupportedError(name, "neuron", f"TSM wraps {type(module.neuron).__name__}, "
                               "which is not a single neuron layer")
    node, shape = inner
    gains = float64(module.gain).reshape(-1)
    if not np.all(np.isfinite(gains)):
        raise UnsupportedError(name, "gain", "TSM gains must be finite")
    node.metadata = dict(node.metadata or {}, **{TSM_GAIN: gains})
    return node, shape


@register_converter(PreSpikeResidual)
def _pre_spike_residual(name, module: PreSpikeResidual, in_shape, dt):
    sn_name, conv_name = f"{name}_sn", f"{name}_conv"
    sn = convert_layer(sn_name, module.sn, in_shape, dt)
    if isinstance(sn, Block) or sn[0] is None:
        raise UnsupportedError(sn_name, "type", "the block's activation must be one neuron layer")
    conv, shape = conv_node(conv_name, module.conv, sn[1], module.bn)
    if tuple(shape) != tuple(in_shape):
        raise UnsupportedError(conv_name, "shape", f"the residual adds {shape} to {in_shape}")
    return Block({sn_name: sn[0], conv_name: conv}, [(INPUT, sn_name), (sn_name, conv_name)],
                 [conv_name, INPUT], tuple(shape))


def chain_block(name: str, chain, in_shape, dt) -> Block:
    """A composite given as an ordered list of (suffix, module): one node each, in a chain."""
    block = Block(shape=tuple(in_shape))
    previous = INPUT
    for suffix, sub in chain:
        node, block.shape = convert_layer(f"{name}_{suffix}", sub, block.shape, dt)
        if node is None:
            continue
        block.nodes[f"{name}_{suffix}"] = node
        block.edges.append((previous, f"{name}_{suffix}"))
        previous = f"{name}_{suffix}"
    block.outputs = [previous]
    return block


@register_converter(SpikingUGO)
def _spiking_ugo(name, module: SpikingUGO, in_shape, dt):
    return chain_block(name, module.nir_chain(), in_shape, dt)
