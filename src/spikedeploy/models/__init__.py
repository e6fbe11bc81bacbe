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
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint, training_config
from .data import DigitsSplit, encode, load_digits_split
from .losses import lts_loss, tet_s_loss
from .mlp import build_mlp
from .neurons import IF, IMPLIF, LIF, TSM, Readout, reset_state, scale_thresholds
from .residual import PreSpikeResidual
from .naming import layer_names
from .run import run_snntorch
from .train import TrainConfig, TrainResult, evaluate, train

__all__ = [
    "Checkpoint", "load_checkpoint", "save_checkpoint", "training_config",
    "DigitsSplit", "encode", "load_digits_split",
    "build_mlp", "layer_names", "reset_state", "run_snntorch",
    "TrainConfig", "TrainResult", "evaluate", "train",
    "IF", "IMPLIF", "LIF", "TSM", "Readout", "scale_thresholds", "PreSpikeResidual",
    "lts_loss", "tet_s_loss",
]
