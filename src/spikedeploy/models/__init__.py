"""Stage 1: the snnTorch side -- data, encoders, the reference MLP, training, checkpoints.

Public API::

    load_digits_split(seed) -> DigitsSplit          # 8x8 digits in [0, 1], stratified 80/20
    encode(x, num_steps, encoding, seed) -> (T, N, 64) float64   # "rate" | "direct"
    build_mlp(num_inputs=64, hidden=128, num_outputs=10, beta=0.9, threshold=1.0, ...)
    run_snntorch(model, x, dtype=torch.float64) -> {layer_name: spikes (T, N, size), "output": ...}
    layer_names(model) -> [str]                      # node names the exporter uses too
    train(TrainConfig(...)) -> TrainResult
    save_checkpoint(path, model, config) / load_checkpoint(path) -> Checkpoint

The seed papers' mechanisms (issue #7), each exportable to NIR:

    neurons: IF, LIF, IMPLIF (learned v0), Readout (non-spiking), TSM (per-step gains),
             scale_thresholds (threshold guidance on the torch side)
    residual.PreSpikeResidual            # SDM: BN(Conv(IF(x))) + x
    losses: lts_loss, tet_s_loss (readouts: spikedeploy.readout)
    sdm.build_sdm_cnn / train_sdm_cnn     imp.build_imp_mlp / train_imp
    fastsnn: QuantReLU, quantize, convert, count_check
    relu_onnx: relu_mlp_from_onnx, write_relu_onnx
    ugo: fit_ugo, SpikingUGO, error_vs_steps     denoiser.train_denoiser
    sta.TCSA (training only: refused at export)
    recipes.train_recipe(name, **options)  # what `spikedeploy train --model NAME` runs
"""
import importlib

# Public name -> the submodule defining it. Loaded on first use (PEP 562): the digits
# loader and event datasets need neither torch nor snnTorch, and importing them through
# this package must not cost a torch import (about 0.7 s).
_SOURCES = {
    "checkpoint": ("Checkpoint", "load_checkpoint", "save_checkpoint", "training_config"),
    "data": ("DigitsSplit", "encode", "load_digits_split"),
    "losses": ("lts_loss", "tet_s_loss"),
    "mlp": ("build_mlp",),
    "neurons": ("IF", "IMPLIF", "LIF", "TSM", "Readout", "reset_state", "scale_thresholds"),
    "residual": ("PreSpikeResidual",),
    "naming": ("layer_names",),
    "run": ("run_snntorch",),
    "mlp_training": ("TrainConfig", "TrainResult", "evaluate", "train"),
}
_WHERE = {name: module for module, names in _SOURCES.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
