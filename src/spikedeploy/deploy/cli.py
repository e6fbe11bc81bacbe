"""The ``spikedeploy`` command line: one sub-command per pipeline stage.

Bad input (missing, corrupt or non-NIR files, corrupt checkpoints, bad
options) ends with a one-line ``spikedeploy: error: ...`` on stderr and exit
code 2; a check or verification that ran and failed exits 1; an internal
error 3; nothing is left half-written. Set SPIKEDEPLOY_DEBUG=1 for a
traceback. Ctrl-C exits 130, SIGTERM/SIGHUP 128 + the signal, after the same
cleanup.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from ..errors import SpikedeployError, first_line
from ..metadata import CONVENTION_CHOICES, ENCODINGS, FOR_TOOLS as TOOLS, READOUTS


# spikedeploy.models.recipes.RECIPES by name (kept here so that parsing imports no torch;
# tests/deploy/test_mechanisms_cli.py checks that both list the same models).
TRAIN_MODELS = {
    "mlp": "the reference snnTorch MLP (Leaky, spike-count readout)",
    "sdm-cnn": "SDM residual IF CNN with TSM gains",
    "imp-lts": "IMP-SNN MLP (learned initial voltages), LTS loss",
    "imp-tets": "IMP-SNN MLP (learned initial voltages), TET-S loss",
    "fastsnn": "Fast-SNN: quantised ReLU MLP (or --onnx FILE) converted to IF neurons",
    "sdm-denoiser": "SDM-style spiking denoiser (epsilon prediction on noisy digits)",
    "snn-cnn": "Leaky CNN (conv, avg-pool, conv, fc) on digits",
    "snn-rnn": "recurrent Leaky network (RLeaky, all-to-all) on digits",
    "ugo-gelu": "STA universal group operator for GELU, as IF neurons",
    "ugo-exp": "the same for exp",
    "ugo-recip": "the same for 1/x",
    "ugo-rsqrt": "the same for 1/sqrt(x)",
}


def _add_json(p) -> None:
    """One machine-output flag for every command: --json PATH, or --json / --json - for
    stdout carrying only the JSON (the human text then goes to stderr)."""
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                   help="write the result as JSON to PATH; '-' (or no PATH) prints only the JSON on stdout")


def _add_graph_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("graph", help="NIR file (.nir)")
    p.add_argument("--dt", type=float, default=None,
                   help="time step in seconds; replaces the graph's or its convention's")
    p.add_argument("--convention", default="auto", choices=CONVENTION_CHOICES,
                   help="how to fill in what a NIR file does not say (time step, input gain, "
                        "threshold comparison, reset, spikes per step): auto (default: the "
                        "file's own metadata, else the recognised producer's simulator, else "
                        "NIR's equations) or a tool's name")
    p.add_argument("--max-memory", default=None, metavar="SIZE",
                   help="refuse work that would need more memory than this, e.g. 4G (default: "
                        "half the machine's memory, or $SPIKEDEPLOY_MAX_MEMORY)")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, metavar="FILE.py:NAME",
                   help="your snnTorch model: an nn.Module class (or a function returning one) "
                        "in a Python file, built without arguments")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="state_dict for --model: .pt/.pth (torch.save(model.state_dict()), read "
                        "with weights_only=True) or .safetensors")
    p.add_argument("--forward", choices=["step", "sequence"], default=None,
                   help="--model: 'step' if one call is one time step (init_hidden neurons), "
                        "'sequence' if forward loops over the time steps itself (default: "
                        "detected)")


# spikedeploy.models.event_data.DATASET_CHOICES (kept here so that parsing imports no torch;
# tests/deploy/test_datasets_cli.py checks that both list the same).
DATASETS = ("digits", "tonic:NMNIST", "tonic:SHD", "tonic:DVSGesture")


def _add_dataset_args(p: argparse.ArgumentParser, split: str = "test") -> None:
    p.add_argument("--dataset", choices=DATASETS, default="digits",
                   help=f"digits (built in) or a tonic dataset read from --data-dir (its {split} "
                        "split as event frames; never downloaded)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="the folder tonic saved the dataset to: DIR/NMNIST/Test/..., "
                        "DIR/SHD/shd_test.h5, DIR/DVSGesture/ibmGestureTest/...")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--time-bins", type=int, default=None, metavar="T",
                   help="frames per recording (tonic ToFrame n_time_bins): the time steps")
    g.add_argument("--time-window", type=float, default=None, metavar="US",
                   help="or frames of US microseconds from each recording's first event, as "
                        "many as --steps (default: the graph's T)")
    p.add_argument("--downsample", type=int, default=None, metavar="K",
                   help="pixels (SHD: channels) 1/K in each direction (tonic Downsample)")
    p.add_argument("--denoise", type=float, default=None, metavar="US",
                   help="drop events with no neighbour within US microseconds (tonic Denoise; "
                        "0: none, overriding what a graph was trained with)")
    p.add_argument("--binarise", action=argparse.BooleanOptionalAction, default=None,
                   help="0/1 frames (default: event counts, graded inputs, or what the graph "
                        "was trained on)")


def _add_scale_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="split the samples into N shards run in parallel (each Lava shard in its "
                        "own Lava runtime); results equal the serial run's")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: shards as child processes on this machine; ray: shards as Ray "
                        "tasks (pip install 'spikedeploy[ray]')")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="--executor ray: the cluster to join (default: start a local Ray for "
                        "the run)")
    p.add_argument("--shard-timeout", type=float, default=None, metavar="SECONDS",
                   help="with --workers or --executor: give up one attempt of a shard after "
                        "this long (it is retried once; default: no limit beyond Lava's own)")


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reference simulator")
    g.add_argument("--engine", choices=["auto", "numpy", "torch"], default="auto",
                   help="numpy, torch (CPU threads or CUDA), or auto: torch for large runs and "
                        "on a GPU, numpy for small ones (default)")
    g.add_argument("--device", default="cpu",
                   help="cpu (default) or cuda[:N] (the torch engine)")
    g.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                   help="float64 (default: exact, spike for spike with snnTorch float64 and "
                        "Lava) or float32 (faster; a voltage within float32 rounding of its "
                        "threshold may spike differently: verify measures how often)")


def _add_data_args(p: argparse.ArgumentParser, default_samples: int = 100) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--samples", type=int, default=None,
                   help=f"number of test samples, digits or --dataset (default {default_samples})")
    g.add_argument("--input", default=None,
                   help="inputs as .npy, time-major (T, N, *input_shape)")
    p.add_argument("--labels", default=None, help="labels for --input as .npy (N,)")
    p.add_argument("--steps", type=int, default=None, help="time steps T (default: the graph's)")
    p.add_argument("--seed", type=int, default=None, help="encoding seed (default: the graph's)")
    p.add_argument("--threshold-scale", type=float, default=1.0, metavar="GAMMA",
                   help="threshold guidance: multiply every spiking threshold by GAMMA (default 1)")
    _add_dataset_args(p)
    _add_scale_args(p)
    _add_engine_args(p)


# Exit codes (README "Command-line conventions"): 0 success; 1 a check or verification that
# ran and failed; 2 bad input or usage (argparse's own code); 3 an internal error.
EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 1, 2, 3


class _DefaultsShown(argparse.HelpFormatter):
    """Every option's default in --help, unless its help already says it or it has none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text.lower() or action.default is None or action.default is False \
                or action.default is argparse.SUPPRESS or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _DefaultsShown)
        super().__init__(*args, **kwargs)


class _VersionAction(argparse.Action):
    """--version: looked up only when asked (reads package metadata, imports nothing)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        from .versions import version_text
        try:
            print(version_text(), flush=True)
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            parser.exit(128 + signal.SIGPIPE)
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spikedeploy",
        description="Train spiking networks, export them to NIR, run them on Lava, "
                    "verify equivalence and report energy.")
    parser.add_argument("--version", action=_VersionAction,
                        help="print the versions of spikedeploy and its libraries, and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)

    p = sub.add_parser(
        "train", help="train a spiking model (digits, or synthetic data for UGOs)",
        description="Train a model and write its checkpoint. Models: " + "; ".join(
            f"{name}: {summary}" for name, summary in TRAIN_MODELS.items()) + ".")
    p.add_argument("-o", "--out", default="spikedeploy_out/checkpoint",
                   help="checkpoint directory to write")
    p.add_argument("--model", choices=list(TRAIN_MODELS), default="mlp",
                   help="what to train (default mlp, the reference MLP)")
    p.add_argument("--hidden", type=int, default=None,
                   help="hidden neurons (mlp 128, imp 128, fastsnn 64, ugo 32)")
    p.add_argument("--steps", type=int, default=None,
                   help="time steps T (mlp 25, sdm-cnn/imp 4, ugo 32; fastsnn: 2^bits - 1)")
    p.add_argument("--encoding", choices=list(ENCODINGS), default=None,
                   help="mlp only: input encoding (default rate; the others use direct input)")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs (default: the model's own, e.g. mlp 10)")
    p.add_argument("--seed", type=int, default=0, help="data split and initialisation seed")
    p.add_argument("--train-subset", type=int, default=None, metavar="N",
                   help="train on the first N training samples only (quick runs)")
    p.add_argument("--bits", type=int, default=None,
                   help="fastsnn: activation bits b (T = 2^b - 1; default 3)")
    p.add_argument("--onnx", default=None, metavar="FILE",
                   help="fastsnn: read the ReLU network from this ONNX file instead of training it")
    p.add_argument("--qat-epochs", type=int, default=None,
                   help="fastsnn: quantisation-aware fine-tuning epochs (default 4)")
    p.add_argument("--channels", type=int, default=None, help="sdm-cnn, sdm-denoiser: channels (default 8)")
    p.add_argument("--blocks", type=int, default=None,
                   help="sdm-cnn, sdm-denoiser: pre-spike residual blocks (default 2)")
    p.add_argument("--no-tsm", dest="tsm", action="store_const", const=False, default=None,
                   help="sdm-cnn, sdm-denoiser: no temporal-wise gains (TSM)")
    p.add_argument("--tsm-epochs", type=int, default=None,
                   help="sdm-cnn, sdm-denoiser: epochs fine-tuning the TSM gains (default 2)")
    p.add_argument("--fit-steps", type=int, default=None,
                   help="ugo-*: optimiser steps fitting the ReLU MLP (default 2000)")
    p.add_argument("--shared-neuron-params", action="store_const", const=True, default=None,
                   help="snn-cnn, snn-rnn (and mlp, whose fixed beta and threshold are shared "
                        "anyway): one beta and one threshold per layer, what Loihi's stock LIF "
                        "holds (the loihi2 target and netx need it)")
    _add_dataset_args(p, split="training (and test)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="--dataset: recordings per training batch (default 32); frames are "
                        "built batch by batch")

    p = sub.add_parser(
        "export", help="export a checkpoint, or your own snnTorch model and weights, to NIR",
        description="Export a checkpoint written by 'train', or any snnTorch model: "
                    "--model path/to/net.py:NAME (an nn.Module class or a function returning "
                    "one, built without arguments) with --weights (a state_dict: .pt/.pth read "
                    "without unpickling, or .safetensors).")
    p.add_argument("checkpoint", nargs="?", default=None,
                   help="checkpoint directory written by 'train' (or use --model); with "
                        "--to netx also a NIR file")
    p.add_argument("-o", "--out", required=True, help="file to write (.nir, or .net for netx)")
    p.add_argument("--to", choices=["nir", "netx"], default="nir",
                   help="nir (default), or netx: lava-dl's HDF5 network for Loihi 2, quantised "
                        "for the loihi2 target (what it cannot hold is refused)")
    p.add_argument("--input-scale", type=float, default=None,
                   help="--to netx: integer units per unit of graded input (default 16 for "
                        "direct-encoded digits, else 1: spikes)")
    p.add_argument("--for", dest="for_tool", choices=TOOLS, default=None,
                   help="write the form that tool's NIR importer runs with spikedeploy's spikes "
                        "(snntorch: import_from_nir, norse: norse.torch.from_nir, sinabs: "
                        "sinabs.from_nir, nir: NIR's own equations); what it cannot represent "
                        "is refused")
    _add_model_args(p)
    p.add_argument("--input-shape", default=None, metavar="C,H,W",
                   help="--model: one time step's input shape without the batch, e.g. 1,28,28")
    p.add_argument("--steps", type=int, default=None,
                   help="--model: time steps T of a run (graph metadata; a model that loops "
                        "over its own steps sets it)")
    p.add_argument("--dt", type=float, default=None,
                   help="--model: seconds per step the NIR time constants are written for "
                        "(default 1e-4, as snnTorch's exporter)")
    p.add_argument("--readout", choices=list(READOUTS), default=None,
                   help="--model: how the output is read (default spike_count)")
    p.add_argument("--threshold-scale", type=float, default=1.0, metavar="GAMMA",
                   help="threshold guidance baked into the graph: thresholds x GAMMA")
    p.add_argument("--strict-nir", action="store_true",
                   help="NIR primitives only: snnTorch's delayed subtractive reset as LI + "
                        "Threshold + a recurrent Scale, initial voltages as plain nodes "
                        "(what has no pure-NIR form is refused)")

    p = sub.add_parser("convert", help="rewrite a NIR file for another tool's importer",
                       description="Read a NIR file (under --convention) and write the form "
                                   "the named tool's importer runs with spikedeploy's spikes: "
                                   "input gains folded into weights, time constants for the "
                                   "tool's step; what the importer cannot represent is refused "
                                   "with node, field and reason.")
    _add_graph_args(p)
    p.add_argument("--for", dest="for_tool", choices=TOOLS, required=True,
                   help="the tool whose importer will read the file")
    p.add_argument("-o", "--out", required=True, help="NIR file to write")

    p = sub.add_parser("simulate", help="run a NIR graph on Lava or the reference simulator")
    _add_graph_args(p)
    _add_data_args(p)
    p.add_argument("--backend", choices=["reference", "lava", "loihi2", "netx"],
                   default="reference",
                   help="reference (the exact semantics, fast), lava (our Lava processes), "
                        "loihi2 (Lava's stock processes, fixed point) or netx (the netx file, "
                        "run by lava-dl)")
    p.add_argument("--precision", choices=["float", "fixed"], default=None,
                   help="float (default) or fixed; loihi2 and netx are always fixed")
    _add_json(p)
    p.add_argument("-o", "--out", "--save", dest="save", default=None, metavar="FILE",
                   help="write output and per-layer spikes: .npz, or "
                   ".nir for NIR's data format (NIRGraphData)")
    p.add_argument("--record", choices=["layers", "all", "outputs"], default="layers",
                   help="what the reference simulator keeps (and --save writes): the inputs, "
                        "neuron layers and outputs (default), every op including synaptic "
                        "currents, or the outputs only")

    p = sub.add_parser("energy", help="per-layer operations and energy report")
    _add_graph_args(p)
    _add_data_args(p)
    p.add_argument("--backend", choices=["reference", "lava"], default="reference",
                   help="simulator whose spikes are counted (the counts are the same)")
    p.add_argument("--precision", choices=["float", "fixed"], default="float")
    _add_json(p)
    p.add_argument("-o", "--out", default=None, metavar="DIR",
                   help="directory to write report.json, report.csv, report.html and the "
                        "resource map to (default: none written)")
    p.add_argument("--profile", default="45nm",
                   help="energy profile: a packaged name (45nm, 45nm-fp16, 45nm-int8, loihi) "
                        "or a .toml/.json file (default 45nm)")
    p.add_argument("--variant", choices=["nonzero", "all"], default="nonzero",
                   help="synaptic ops over non-zero weights only (default) or all synapses")
    p.add_argument("--memory", action="store_true",
                   help="add the memory-access term (weight reads, neuron state); off by default")
    p.add_argument("--chip", default="loihi2",
                   help="chip the report maps the layers onto (resources.html): loihi1, loihi2 "
                        "(default) or a chip profile .toml")

    p = sub.add_parser("verify", help="compare snnTorch, the reference simulator and Lava")
    _add_graph_args(p)
    _add_data_args(p)
    p.add_argument("--checkpoint", default=None, help="also run the snnTorch model")
    _add_model_args(p)
    p.add_argument("--precision", choices=["float", "fixed"], default=None,
                   help="float (default) or fixed; --target loihi2 is always fixed")
    p.add_argument("--max-disagreement", type=float, default=0.0,
                   help="fixed precision: largest tolerated fraction of differing spikes "
                        "vs the float reference (default 0)")
    p.add_argument("--no-lava", action="store_true", help="skip the Lava backend")
    p.add_argument("--target", choices=["loihi2"], default=None,
                   help="loihi2: compare the stock-process network and the netx file with the "
                        "target's fixed reference (bit for bit), and the float reference")
    _add_json(p)

    p = sub.add_parser("check", help="report which backends can run each node of a graph")
    _add_graph_args(p)
    p.add_argument("--precision", choices=["float", "fixed"], default="float")
    p.add_argument("--target", choices=["loihi2", "netx"], default=None,
                   help="check for the Loihi 2 target (Lava's stock processes) or for a netx "
                        "file instead of our Lava processes")
    _add_json(p)

    p = sub.add_parser(
        "resources", help="per-layer Loihi cores: compartments, axons, synapse memory",
        description="How each layer splits over Loihi cores under every per-core ceiling "
                    "(nengo-loihi's method; Loihi 2 figures are an estimate), the limiting "
                    "ceiling, total cores and chips; with --samples or --input, measured "
                    "spikes and traffic per core (reference simulator).")
    _add_graph_args(p)
    p.add_argument("--chip", default="loihi2",
                   help="loihi1, loihi2 (default) or a chip profile .toml")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--samples", type=int, default=None,
                   help="measure activity on N digits test samples")
    g.add_argument("--input", default=None, help="measure activity on inputs .npy (T, N, ...)")
    p.add_argument("--steps", type=int, default=None, help="time steps T (default: the graph's)")
    _add_json(p)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV, one row per layer")
    fmt.add_argument("--html", action="store_true", help="a self-contained HTML page")
    p.add_argument("-o", "--out", default=None, help="write to this file instead of stdout")

    p = sub.add_parser("sweep", help="threshold guidance: accuracy and energy per threshold scale")
    _add_graph_args(p)
    _add_data_args(p)
    p.add_argument("--gammas", default="0.8,0.9,1.0,1.1,1.2",
                   help="comma-separated threshold scales (default 0.8,0.9,1.0,1.1,1.2)")
    p.add_argument("--targets", default=None,
                   help="regression targets (.npy, N x output shape), e.g. a denoiser's noise")
    p.add_argument("--backend", choices=["reference", "lava"], default="reference",
                   help="simulator of every sweep point")
    p.add_argument("--precision", choices=["float", "fixed"], default="float",
                   help="float, or Loihi fixed point")
    p.add_argument("--profile", default="45nm", help="energy profile (as for 'energy')")
    _add_json(p)

    sub.add_parser("install-lava", help="install Lava and lava-dl into this environment",
                   description="lava-nc 0.10 declares Python < 3.11, so pip will not install it "
                               "as a dependency: this runs pip to install it and lava-dl 0.6 "
                               "without their declared dependencies, plus what they really need "
                               "(networkx <= 2.8.7, asteval < 0.10), as the Makefile does.")

    p = sub.add_parser("demo", help="train -> export -> Lava float/fixed -> energy on digits")
    p.add_argument("-o", "--out", default="spikedeploy_out", metavar="DIR", help="output folder")
    p.add_argument("--samples", type=int, default=None,
                   help="test samples run on Lava (default: the whole test split)")
    for command in sub.choices.values():
        command.add_argument("-q", "--quiet", action="store_true",
                             help="no progress bars (they only show on a terminal anyway)")
        command.add_argument("-v", "--verbose", action="count", default=0,
                             help="log what happens (-vv: debug detail, libraries included)")
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: unwinds like Ctrl-C, so every cleanup (a Lava run's process group
    and shared memory, temporary files) runs before the exit."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_received: list[int] = []      # termination signals seen: a library that turns our exception
                               # into its own KeyboardInterrupt (Ray's waits do) still says which


def _terminate(signum, frame):
    _received.append(signum)
    raise Terminated(signum)


# Where each command writes: (command, option) -> a folder (True) or a file (False).
# Checked before any work, so a bad destination never costs a run.
DESTINATIONS = {("train", "out"): True, ("export", "out"): False, ("convert", "out"): False,
                ("simulate", "save"): False, ("simulate", "json"): False,
                ("energy", "out"): True, ("energy", "json"): False, ("verify", "json"): False,
                ("check", "json"): False, ("resources", "out"): False,
                ("resources", "json"): False, ("sweep", "json"): False, ("demo", "out"): True}


def _check_destinations(args) -> None:
    from ..errors import SpikedeployError
    from ..fileio import check_destination, require_folder
    for (command, option), folder in DESTINATIONS.items():
        value = getattr(args, option, None) if args.command == command else None
        if not value:
            continue
        if value == "-":
            if option == "json":
                continue                    # --json -: stdout
            if command == "resources":      # -o -: stdout, as without -o
                args.out = None
                continue
            raise SpikedeployError(f"-o -: '{command}' writes files; give a path")
        check_destination(value, folder)
        if (command, option) == ("simulate", "save"):
            from .runs import check_records_path
            check_records_path(value)
        if not folder:                      # one file: its folder must exist (a typo
            require_folder(value)           # is not created)


def _configure_output(args) -> None:
    import logging

    from ..progress import set_quiet
    set_quiet(getattr(args, "quiet", False))
    verbose = getattr(args, "verbose", 0)
    level = logging.WARNING if not verbose else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr, force=True,
                        format="spikedeploy: %(levelname)s: %(name)s: %(message)s")
    if verbose == 1:          # -v: spikedeploy's own log; -vv: the libraries' too
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger("spikedeploy").setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    from . import provenance
    provenance.COMMAND_LINE = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from . import commands
    previous = {}
    _received.clear()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, _terminate)
    try:
        from ..limits import set_limit
        _configure_output(args)
        set_limit(getattr(args, "max_memory", None))
        _check_destinations(args)
        commands.set_human_stream(sys.stderr if getattr(args, "json", None) == "-" else None)
        return int(getattr(commands, f"cmd_{args.command.replace('-', '_')}")(args) or 0)
    except SpikedeployError as exc:
        print(f"spikedeploy: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Terminated as exc:
        print(f"spikedeploy: terminated by {signal.Signals(exc.signum).name}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        if _received:
            print(f"spikedeploy: terminated by {signal.Signals(_received[-1]).name}",
                  file=sys.stderr)
            return 128 + _received[-1]
        print("spikedeploy: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:      # `spikedeploy check --json | head`: the reader left; end quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError:
            pass
        return 128 + signal.SIGPIPE
    except Exception as exc:  # noqa: BLE001 - a bug, but still one line unless debugging
        if os.environ.get("SPIKEDEPLOY_DEBUG"):
            raise
        text = first_line(exc)
        print(f"spikedeploy: internal error: {type(exc).__name__}: {text} "
              "(set SPIKEDEPLOY_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
