"""Stage 1: the snnTorch side -- data, encoders, the reference MLP, training, checkpoints.

Public API::

    load_digits_split(seed) -> DigitsSplit          # 8x8 digits in [0, 1], stratified 80/20
    encode(x, num_steps, encoding, seed) -> (T, N, 64) float64   # "rate" | "direct"
    build_mlp(num_inputs=64, hidden=128, num_outputs=10, beta=0.9, threshold=1.0, ...)
    run_snntorch(model, x, dtype=torch.float64) -> {layer_name: spikes (T, N, size), "output": ...}
    layer_names(model) -> [str]                      # node names the exporter uses too
    train(TrainConfig(...)) -> TrainResult
    save_checkpoint(path, model, config) / load_checkpoint(path) -> Checkpoint
"""
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint, training_config
from .data import ENCODINGS, DigitsSplit, encode, load_digits_split
from .mlp import build_mlp
from .sequential import layer_names, reset_state, run_snntorch
from .train import TrainConfig, TrainResult, evaluate, spike_count_prediction, train

__all__ = [
    "Checkpoint", "load_checkpoint", "save_checkpoint", "training_config",
    "ENCODINGS", "DigitsSplit", "encode", "load_digits_split",
    "build_mlp", "layer_names", "reset_state", "run_snntorch",
    "TrainConfig", "TrainResult", "evaluate", "spike_count_prediction", "train",
]
