"""What each ``spikedeploy`` sub-command does (the parser is in cli.py)."""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from ..errors import SpikedeployError
from ..fileio import require_folder, write_text
from ..hw_sim.compare import compare_records
from ..hw_sim.reference import EngineChoice, check_options
from ..hw_sim.result import SimResult
from ..ir import fixed_point as fxp
from ..ir.conventions import apply_convention, describe_convention, recorded_convention
from ..ir.load import read_nir
from ..ir.lowering import lower
from ..ir.ops import NeuronOp
from ..ir.passes import scale_thresholds
from ..metadata import DEFAULT_DT, NUM_STEPS
from ..readout import accuracy
from .inputs import check_run_memory, dataset_request, graph_input_scale, resolve_inputs
from .runs import (LOIHI2_BACKENDS, layer_names, quantisation_lines, run_backend, save_records,
                   spike_counts)


log = logging.getLogger(__name__)
_human_stream = None      # None: stdout; stderr while stdout carries only JSON (--json -)


def set_human_stream(stream) -> None:
    global _human_stream
    _human_stream = stream


def _say(*parts) -> None:
    from ..tables import fit_lines
    print(fit_lines(" ".join(str(p) for p in parts)), flush=True,
          file=_human_stream or sys.stdout)


def _emit_json(args, obj) -> None:
    """--json PATH writes the file; --json - prints only the JSON on stdout."""
    text = json.dumps(obj, indent=2)
    if args.json == "-":
        print(text, flush=True)
    else:
        write_text(args.json, text + "\n")
        _say(f"wrote {args.json}")


def _run_target(args) -> tuple[str, str]:
    """(backend, precision) the command will run the graph on, as ``check`` names them."""
    precision = getattr(args, "precision", None) or "float"
    if getattr(args, "target", None):                        # verify --target loihi2
        return "loihi2", "fixed"
    backend = getattr(args, "backend", None)
    if backend is None:                                      # verify, resources
        backend = "reference" if getattr(args, "no_lava", True) else "lava"
    return backend, ("fixed" if backend in LOIHI2_BACKENDS else precision)


def _validated(graph, args):
    """The one validation gate: what ``check`` reports as blocking for the backend and
    precision this command runs refuses the command, with the same message. ``graph`` is
    already read under its convention."""
    from ..hw_sim.check import check_graph
    backend, precision = _run_target(args)
    report = check_graph(graph, backend=backend, precision=precision,
                         input_scale=graph_input_scale(graph.metadata))
    blocking = report.blocking()
    if blocking:
        first = blocking[0]
        more = f" (and {len(blocking) - 1} more: spikedeploy check)" if len(blocking) > 1 else ""
        raise SpikedeployError(f"{args.graph}: node '{first.node}', field '{first.field}': "
                               f"{first.reason}{more}")
    return report


def _warn(text: str) -> None:
    # one line per warning (grep-able), however long: never wrapped
    print(f"spikedeploy: warning: {text}", file=sys.stderr, flush=True)


def _read_under_convention(args):
    """The graph read and rewritten under --convention (and --dt), its notes as warnings:
    no foreign file runs silently on assumptions its producer did not make."""
    from ..hw_sim.check import check_graph
    from ..ir.conventions import apply_convention
    original = read_nir(args.graph)
    graph, choice = apply_convention(original, getattr(args, "convention", "auto"), args.dt)
    log.info("%s: convention %s (%s)", args.graph, choice.name, choice.reason)
    notes = []
    if choice.name != "spikedeploy":
        notes = check_graph(original, dt=args.dt, backend="reference",
                            convention=getattr(args, "convention", "auto")).notes
    return graph, notes


def _scale_out(args):
    """--workers/--executor/--ray-address as a ScaleOut (None for commands without them),
    validated before any work."""
    if not hasattr(args, "workers"):
        return None
    from .shard_ray import require_ray
    from .shards import ScaleOut
    scale = ScaleOut(args.workers, args.executor, args.ray_address, args.shard_timeout)
    scale.validate()
    if scale.executor == "ray":
        require_ray()            # installed? (one line if not)
    return scale


def _sharded(command):
    """A command that may shard its runs: its options validated once, before any work, and
    kept as ``args.scale_out``; one Ray for all of its runs (a sweep or verify runs several),
    shut down when the command ends, however it ends; a warning for more local workers than
    cores."""
    import functools

    @functools.wraps(command)
    def run(args):
        scale = args.scale_out = _scale_out(args)
        if scale is not None and scale.executor == "local" and \
                scale.workers > (os.cpu_count() or 1):
            _warn(f"--workers {scale.workers} on {os.cpu_count()} cores: shards beyond the "
                  "cores wait for them")
        if scale is None or scale.executor != "ray":
            return command(args)
        from .shard_ray import ray_session
        with ray_session():
            return command(args)
    return run


def _engine(args, precision: str = "float") -> EngineChoice:
    """The reference simulator's engine options, checked: float32 is refused in fixed point
    (integer arithmetic), and every option where the run is not the reference simulator's
    (Lava, the Loihi 2 target), which would ignore it."""
    choice = EngineChoice(getattr(args, "engine", "auto"), getattr(args, "dtype", "float64"),
                          getattr(args, "device", "cpu"))
    check_options(precision, choice.dtype, choice.device)
    backend = getattr(args, "backend", "reference")
    if backend != "reference" and choice != EngineChoice():
        raise SpikedeployError(f"--engine, --device and --dtype choose how the reference "
                               f"simulator runs; --backend {backend} does not use it")
    return choice


def _load(args):
    graph, notes = _read_under_convention(args)
    _validated(graph, args)
    for note in notes:         # after validation: a refused graph gets its one error line only
        _warn(str(note))
    program = lower(graph)
    gamma = getattr(args, "threshold_scale", 1.0)
    if gamma != 1.0:
        program = scale_thresholds(program, gamma)
        _say(f"threshold guidance: thresholds x {gamma:g}")
    return graph, program


def _batch(args, program, default_samples=100):
    request = dataset_request(args, program.metadata)
    if request is None:         # a dataset's frames are checked as they are sized
        check_run_memory(program, args.samples, args.input, args.steps, default_samples)
    return resolve_inputs(program, args.samples, args.input, args.labels, args.steps,
                          args.seed, default_samples, dataset=request)


def cmd_train(args) -> int:
    from .stages import train_and_save, train_options
    for option in ("train_subset", "epochs", "hidden", "steps"):
        value = getattr(args, option, None)
        if value is not None and value <= 0:
            raise SpikedeployError(f"--{option.replace('_', '-')} must be positive, got {value}")
    started = time.perf_counter()
    result = train_and_save(args.out, progress=_say, **train_options(args))
    accuracy_text = ("" if result.get("test_accuracy") is None
                     else f"  test accuracy {result['test_accuracy']:.3f}")
    _say(f"checkpoint: {args.out}{accuracy_text}  ({time.perf_counter() - started:.1f} s)")
    return 0


def _export_netx(args) -> int:
    """NIR file, checkpoint or --model -> the Loihi 2 target -> a netx file."""
    import math

    from ..hw_sim.loihi2.netx_file import write_netx
    from ..hw_sim.loihi2.target import compile_loihi2
    scale = args.input_scale
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise SpikedeployError(f"--input-scale must be a positive number, got {scale}")
    source = Path(args.checkpoint) if args.checkpoint else None
    if source is not None and not source.exists():
        raise SpikedeployError(f"{source}: no such NIR file or checkpoint directory")
    if source is not None and source.is_file():
        given = [f"--{k.replace('_', '-')}" for k in ("model", "weights", "input_shape",
                                                     "forward", "readout", "steps")
                 if getattr(args, k)] + (["--strict-nir"] if args.strict_nir else [])
        if given:
            raise SpikedeployError(f"{', '.join(given)}: not used with a NIR file (they "
                                   "describe a model to export)")
        program = lower(read_nir(source), dt=args.dt)
        if args.threshold_scale != 1.0:
            program = scale_thresholds(program, args.threshold_scale)
    else:
        program = lower(_export_graph(args))
    if scale is None:
        scale = graph_input_scale(program.metadata)
    if Path(args.out).suffix == ".nir":
        raise SpikedeployError(f"{args.out}: --to netx writes a lava-dl netx file, not NIR: "
                               "name it .net")
    compiled = compile_loihi2(program, scale)
    for note in compiled.notes:
        _say(f"loihi2 pass: {note}")
    write_netx(compiled, args.out)
    _say(f"wrote {args.out}: netx network for Loihi 2 "
         f"({sum(1 for op in compiled.program.ops.values() if op.synaptic)} layers, "
         f"input scale {scale:g})")
    _say_quantisation(compiled.fixed)
    return 0


QUANTISATION_WARNING = 0.1      # relative RMS weight error above which a layer is flagged


def _say_quantisation(fixed) -> None:
    """The per-layer quantisation error, and a warning for layers whose weights lost most of
    their values (e.g. a large input scale leaves few weight levels)."""
    _say("quantisation error per layer (weights, thresholds, gains: relative RMS; du, dv: "
         "largest absolute):")
    for line in quantisation_lines(fixed):
        _say(line)
    for layer, fields in fixed.errors.items():
        for name, value in fields.items():
            if name.startswith("weight") and value > QUANTISATION_WARNING:
                print(f"spikedeploy: warning: {layer}: {name} quantises with {value:.0%} "
                      "relative error (8-bit weights; with graded inputs a smaller input "
                      "scale leaves more weight levels)", file=sys.stderr)


def cmd_export(args) -> int:
    if args.to == "netx":
        return _export_netx(args)
    if args.input_scale is not None:
        raise SpikedeployError("--input-scale goes with --to netx")
    from ..export.to_nir import write_nir
    graph = _export_graph(args)
    if args.for_tool:
        return _write_for(graph, args.for_tool, args.out, args.checkpoint or args.model)
    write_nir(graph, args.out)
    program = lower(read_nir(args.out))   # proves the written file reads back and lowers
    steps = program.meta(NUM_STEPS)
    _say(f"wrote {args.out}: {len(program.ops)} nodes, dt={program.dt:g} s"
         + (f", T={steps}" if steps is not None else ""))
    if args.model is not None and args.weights is None:
        print("spikedeploy: note: no --weights: the model's own initial weights were exported "
              "(built with torch seed 0, as verify --model builds them)", file=sys.stderr)
    return 0


def _write_for(graph, tool: str, out, source) -> int:
    """Write ``graph`` in the form ``tool``'s importer runs with our spikes; prove that
    spikedeploy reads the written file back to the same program."""
    from ..errors import UnsupportedError
    from ..export.to_nir import write_nir
    from ..ir.tool_forms import write_for
    try:
        form = write_for(graph, tool)
    except UnsupportedError as exc:
        raise SpikedeployError(f"{source}: --for {tool}: {exc}") from None
    write_nir(form.graph, out)
    program = lower(apply_convention(read_nir(out))[0])
    _say(f"wrote {out}: {len(program.ops)} nodes for {tool}'s importer, dt={program.dt:g} s")
    for change in form.changes:
        _say(f"  {change}")
    return 0


def cmd_convert(args) -> int:
    graph, notes = _read_under_convention(args)
    for note in notes:
        _warn(str(note))
    return _write_for(graph, args.for_tool, args.out, args.graph)


def _export_graph(args):
    """The NIR graph of the checkpoint or the user's --model."""
    from ..export.to_nir import export_checkpoint, export_model
    if (args.checkpoint is None) == (args.model is None):
        raise SpikedeployError("give a checkpoint directory or --model FILE.py:NAME (one of them)")
    if args.model is None:
        if args.weights or args.input_shape or args.forward or args.readout:
            raise SpikedeployError("--weights, --input-shape, --forward and --readout go with "
                                   "--model; a checkpoint carries its own")
        return export_checkpoint(args.checkpoint, threshold_scale=args.threshold_scale,
                                 strict_nir=args.strict_nir)
    from .stages import load_model
    if args.input_shape is None:
        raise SpikedeployError("--model needs --input-shape (one step's input without the "
                               "batch, e.g. 1,28,28)")
    model = load_model(args.model, args.weights)
    return export_model(model, _shape_arg(args.input_shape), dt=args.dt or DEFAULT_DT,
                        readout=args.readout, threshold_scale=args.threshold_scale,
                        strict_nir=args.strict_nir, num_steps=args.steps, forward=args.forward)


def _shape_arg(text: str) -> tuple:
    try:
        shape = tuple(int(s) for s in str(text).replace("x", ",").split(",") if s.strip())
    except ValueError:
        raise SpikedeployError(f"--input-shape must be comma-separated sizes, got {text!r}")
    if not shape or any(s < 1 for s in shape):
        raise SpikedeployError(f"--input-shape must be positive sizes, got {text!r}")
    return shape


@_sharded
def cmd_simulate(args) -> int:
    graph, program = _load(args)
    batch = _batch(args, program)
    if args.backend in LOIHI2_BACKENDS and args.precision == "float":
        raise SpikedeployError(f"--backend {args.backend} runs Loihi fixed point only (drop "
                               "--precision float)")
    precision = "fixed" if args.backend in LOIHI2_BACKENDS else (args.precision or "float")
    scale = args.scale_out
    from .shards import plan_shards
    shards = "" if scale.serial else \
        f"; {len(plan_shards(batch.x.shape[1], scale.workers))} shards ({scale.executor})"
    _say(f"simulating on {args.backend} ({precision}, dt={program.dt:g} s): {batch.source}{shards}")
    _say(describe_convention(program.metadata))
    engine = _engine(args, precision)
    result = run_backend(graph, program, batch, args.backend, precision, scale=scale,
                         record=args.record, engine=engine)
    if "engine" in result.info:
        _say(f"reference engine: {result.info['engine']} ({result.info['device']}, "
             f"{result.info['dtype']})")
    for note in result.info.get("notes", []):
        _say(f"loihi2 pass: {note}")
    if result.fixed is not None:
        _say_quantisation(result.fixed)
    if result.latency:
        _say(f"Lava pipeline latency: {result.latency} steps (outputs aligned)")
    for name, count in spike_counts(result).items():
        _say(f"  {name:>16}: {count} spikes")
    if batch.labels is not None:
        _say(f"accuracy: {accuracy(result.output(), batch.labels, program.readout):.4f} "
             f"on {len(batch.labels)} samples")
    if args.save:
        save_records(args.save, result)
        _say(f"saved spikes to {args.save}")
    if args.json:
        _emit_json(args, {
            "backend": args.backend, "precision": precision, "dt": program.dt,
            "samples": int(batch.x.shape[1]), "steps": int(batch.x.shape[0]),
            "inputs": batch.origin, "convention": recorded_convention(program.metadata),
            "engine": _engine_info(result),
            "spikes": {k: int(v) for k, v in spike_counts(result).items()},
            "accuracy": None if batch.labels is None else
            accuracy(result.output(), batch.labels, program.readout)})
    return 0


def _engine_info(result) -> dict | None:
    """The engine a reference run used (None for other backends)."""
    info = result.info
    return ({k: info[k] for k in ("engine", "device", "dtype")} if "engine" in info else None)


@_sharded
def cmd_energy(args) -> int:
    graph, program = _load(args)
    from ..energy.model import check_memory, load_profile
    from ..energy.report import energy_report
    from ..hw_sim.loihi2.resources import load_chip
    profile = load_profile(args.profile)      # a bad profile fails before the run
    load_chip(args.chip)                      # and so does a bad chip
    check_memory(profile, args.memory)
    batch = _batch(args, program)
    result = run_backend(graph, program, batch, args.backend, args.precision,
                         scale=args.scale_out, engine=_engine(args, args.precision))
    report = energy_report(result, profile=profile, variant=args.variant, memory=args.memory,
                           chip=args.chip)
    from .provenance import describe_sample, provenance, run_accuracy
    report.provenance = provenance(args.graph, inputs=batch.source, engine=_engine_info(result))
    acc = run_accuracy(result, batch, program.readout)
    report.accuracy = {} if acc is None else {f"{args.backend} {args.precision}": acc}
    report.sample = describe_sample(result, batch, program.readout)
    _say(report.to_table())
    _say(describe_convention(program.metadata))
    hw = report.to_dict()["hardware"]
    _say(f"hardware: {hw['cores']} cores, {hw['chips']} chip(s) on {hw['chip']}"
         f"{' (estimate)' if hw['estimate'] else ''}; resource map: "
         + (f"{Path(args.out) / hw['resource_map']}" if args.out else
            "written with the reports by -o DIR"))
    if args.out:
        paths = report.write(Path(args.out))
        _say("wrote " + ", ".join(str(p) for p in paths))
    if args.json:
        _emit_json(args, report.to_dict())
    return 0


def cmd_check(args) -> int:
    from ..hw_sim.check import check_graph
    try:       # read once: the graph's own input scale, as simulate uses it, then the checks
        graph = read_nir(args.graph)
        scale = graph_input_scale(graph.metadata)
    except SpikedeployError:
        import h5py
        path = Path(args.graph)
        if not path.is_file() or not h5py.is_hdf5(path):    # nothing to check: bad input
            raise
        graph, scale = args.graph, 1.0     # check_graph reports the malformed file itself
    report = check_graph(graph, dt=args.dt, precision=args.precision,
                         backend=args.target or "lava", input_scale=scale, source=args.graph,
                         convention=args.convention)
    unusable = [p for p in report.problems if (p.node == "<request>" and p.field != "lava")
                or (p.node == "<graph>" and p.field == "dt" and args.dt is not None)]
    if unusable:               # a bad option: bad input, not a verdict on the graph
        raise SpikedeployError(f"{args.graph}: {unusable[0].field}: {unusable[0].reason}")
    if args.json != "-":                 # with --json - the JSON is the report
        _say(report.to_text())
    if args.json:
        _emit_json(args, report.to_dict())
    return 0 if report.ok else 1


def cmd_resources(args) -> int:
    from ..hw_sim.loihi2.resource_formats import format_table, to_csv, to_html
    from ..hw_sim.loihi2.resources import load_chip, resource_map
    graph, program = _load(args)
    chip = load_chip(args.chip)             # a bad chip name fails before any run
    records = None
    if args.samples is not None or args.input is not None:
        batch = resolve_inputs(program, args.samples, args.input, None, args.steps, None, 100)
        records = run_backend(graph, program, batch, "reference", "float").records
    rmap = resource_map(program, chip, records)
    from ..hw_sim.loihi2.target import loihi2_problems
    refused = loihi2_problems(program, 1.0)[1]
    if refused:
        print(f"spikedeploy: note: the loihi2 target refuses this graph ({len(refused)} "
              "problem(s): spikedeploy check --target loihi2); the map counts it as given",
              file=sys.stderr)
    if not args.out:           # the table (or CSV, HTML) is stdout: messages go to stderr
        set_human_stream(sys.stderr)
    if args.json and args.json != "-":       # --json PATH: the JSON beside the chosen output
        _emit_json(args, rmap.to_dict())
    if args.json == "-":       # the JSON is the output: on stdout, or in -o FILE as before
        text = json.dumps(rmap.to_dict(), indent=2) + "\n"
    elif args.csv:
        text = to_csv(rmap)
    elif args.html:
        text = to_html(rmap, title=f"{Path(args.graph).name} on {chip.name}")
    else:
        text = format_table(rmap)
    if args.out:
        _write_output(args.out, text)
        _say(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0 if rmap.totals["fits"] else 1       # a network that does not fit is refused


def _write_output(path, text: str) -> None:
    """One output file, atomically, into a folder that exists (one-line errors)."""
    out = require_folder(path)
    if out.is_dir():
        raise SpikedeployError(f"{out}: is a directory")
    write_text(out, text)


@_sharded
def cmd_verify(args) -> int:
    # options first: nothing is read or run for a request that cannot be served
    if args.checkpoint and args.model:
        raise SpikedeployError("give --checkpoint or --model, not both")
    if args.target and args.precision == "float":
        raise SpikedeployError("--target loihi2 runs Loihi fixed point only (drop --precision "
                               "float)")
    if not 0 <= args.max_disagreement <= 1:         # also refuses NaN
        raise SpikedeployError(f"--max-disagreement must be a fraction in [0, 1], got "
                               f"{args.max_disagreement}")
    if args.target and args.no_lava:
        raise SpikedeployError("--target loihi2 verifies the stock-process network and the "
                               "netx file, which run on Lava: drop --no-lava")
    graph, program = _load(args)
    batch = _batch(args, program)
    model = None
    if args.model:
        from .stages import load_model   # imports torch: only when asked
        model = load_model(args.model, args.weights)   # a bad model file fails before any run
    precision = "fixed" if args.target else (args.precision or "float")
    float_program = program
    scale = args.scale_out
    if args.target:
        _engine(args, precision)
        runs = _target_runs(program, batch, args.no_lava, scale)
        program = runs["reference"].program
    else:
        fixed = fxp.for_run(program, precision, None, batch.input_scale)
        engine = _engine(args, precision)
        exact = EngineChoice(engine.engine, "float64", engine.device)
        runs = {"reference": run_backend(graph, program, batch, "reference", precision,
                                         fixed=fixed, scale=scale, engine=exact)}
        if engine.dtype != "float64":      # measured against the exact run, within tolerance
            runs[f"reference {engine.dtype}"] = run_backend(
                graph, program, batch, "reference", precision, scale=scale, engine=engine)
        if not args.no_lava:
            runs["lava"] = run_backend(graph, program, batch, "lava", precision, fixed=fixed,
                                       scale=scale)
    if args.checkpoint or model is not None:
        from .stages import checkpoint_records, snntorch_records   # imports torch
        if args.checkpoint:
            records = checkpoint_records(args.checkpoint, batch.x,
                                         threshold_scale=program.threshold_scale)
        else:
            records = snntorch_records(model, batch.x, threshold_scale=program.threshold_scale,
                                       forward=args.forward)
        runs["snntorch"] = SimResult(program, {k: v for k, v in records.items() if k in program.ops},
                                     backend="snntorch", precision="float")
    report = verify_runs(program, runs, batch, precision, args.max_disagreement, float_program,
                         scale, engine=EngineChoice(args.engine, "float64", args.device))
    _say(format_verify(report))
    if args.json:
        _emit_json(args, report)
    return 0 if report["passed"] else 1


def _target_runs(program, batch, no_lava: bool, scale=None) -> dict:
    """The Loihi 2 target's fixed reference, stock-process network and netx file (the
    latter where netx can hold the graph), compiled once and sharded as ``scale`` says."""
    from ..hw_sim.loihi2.netx_file import netx_problems
    from ..hw_sim.loihi2.target import compile_loihi2
    from .runs import loihi2_task
    from .shards import run_sharded
    compiled = compile_loihi2(program, batch.input_scale)
    for note in compiled.notes:
        _say(f"loihi2 pass: {note}")

    def run(backend):
        return run_sharded(scale, loihi2_task, batch.x, compiled=compiled, backend=backend,
                           record="all")
    runs = {"reference": run("reference")}
    if no_lava:
        return runs
    runs["loihi2"] = run("loihi2")
    chain_problems = netx_problems(compiled)
    if chain_problems:
        _say(f"netx: not run: {chain_problems[0]}")
    else:
        runs["netx"] = run("netx")
    return runs


def verify_runs(program, runs: dict, batch, precision: str, max_disagreement: float,
                float_program=None, scale=None, engine: EngineChoice | None = None) -> dict:
    """Compare every backend with the reference simulator; float runs must agree exactly.

    In fixed precision, Lava (our processes, the stock ones, the netx file) must
    still equal the fixed reference bit for bit, snnTorch (a float run) must equal
    the float reference of ``float_program`` (default: ``program``; the Loihi 2
    target's program is the graph's after its passes), and the fixed reference may
    differ from that float one by at most ``max_disagreement`` of all recorded
    spikes, as may a float32 reference run (``runs["reference float32"]``) from the
    float64 one. ``failures`` says why a verification failed.
    """
    base = runs["reference"]
    layers = layer_names(program) + [n for n in program.outputs if n not in layer_names(program)]
    comparisons, failures = {}, []
    float_run = None
    if precision == "fixed":
        float_run = run_backend(None, float_program or program, batch, "reference", "float",
                                scale=scale, engine=engine)
    for name, run in runs.items():
        if name == "reference":
            continue
        if name == "snntorch" and float_run is not None:
            title, comp = "float reference vs snntorch", compare_records(float_run, run, layers)
            exact_required = True
        elif name.startswith("reference "):      # float32: where spikes happen, not values
            events = spike_layers(program, layers)
            title = f"reference vs {name} (spikes)"
            comp = compare_records(spike_events(base, events), spike_events(run, events), events)
        else:
            title, comp = f"reference vs {name}", compare_records(base, run, layers)
            exact_required = name in ("lava",) + LOIHI2_BACKENDS or precision == "float"
        comparisons[title] = comp
        if name.startswith("reference "):         # float32: an approximation, measured
            if comp.disagreement > max_disagreement:
                failures.append(f"{title}: {comp.disagreement:.2e} of the values differ, more "
                                f"than --max-disagreement {max_disagreement:g}")
        elif exact_required and not comp.agrees:
            failures.append(f"{title}: {comp.disagreement:.2e} of the values differ "
                            "(must be identical)")
    if float_run is not None:
        quant = compare_records(float_run, base, layers)
        comparisons["float reference vs fixed reference"] = quant
        if quant.disagreement > max_disagreement:
            failures.append(f"quantisation changes {quant.disagreement:.2e} of the spikes, more "
                            f"than --max-disagreement {max_disagreement:g}")
    if not comparisons:
        failures.append("nothing was compared: only the reference ran (drop --no-lava, add "
                        "--checkpoint or --model, or verify --precision fixed)")
    acc = {}
    labels = batch.labels
    if labels is not None:
        acc = {name: accuracy(run.output(), labels, program.readout)
               for name, run in runs.items() if program.outputs[0] in run.records}
        if float_run is not None:
            acc["float reference"] = accuracy(float_run.output(), labels, program.readout)
    return {"precision": precision, "samples": base.num_samples, "steps": base.num_steps,
            "inputs": batch.origin, "dt": program.dt,
            "convention": recorded_convention(program.metadata),
            "threshold_scale": program.threshold_scale,
            "passed": not failures, "failures": failures,
            "max_disagreement": max_disagreement, "accuracy": acc,
            "engine": _engine_info(base),
            "comparisons": {k: v.to_dict() for k, v in comparisons.items()}}


def spike_layers(program, layers: list[str]) -> list[str]:
    """The spiking populations among ``layers`` (voltages and currents have no spikes)."""
    return [name for name in layers
            if isinstance(program.ops[name], NeuronOp) and program.ops[name].params.spiking]


def spike_events(run: SimResult, layers: list[str]) -> SimResult:
    """Where ``run``'s layers spiked (a graded spike's value, rounded in float32, aside)."""
    return SimResult(run.program, {name: run.records[name] != 0 for name in layers},
                     backend=run.backend, precision=run.precision)


def format_verify(report: dict) -> str:
    lines = [f"verify ({report['precision']}, {report['samples']} samples x {report['steps']} "
             f"steps; convention {report['convention']['name']})"]
    for title, comp in report["comparisons"].items():
        lines.append(f"  {title}: {'AGREE' if comp['agrees'] else 'DIFFER'} "
                     f"(disagreement {comp['disagreement']:.2e})")
        for layer in comp["layers"]:
            first = layer["first_divergence"]
            where = "" if first is None else f"  first divergence: step {first[0]}, sample {first[1]}, neuron {first[2]}"
            lines.append(f"    {layer['layer']:>16}: {layer['identical']}/{layer['total']} identical{where}")
    for name, value in report["accuracy"].items():
        lines.append(f"  accuracy {name:>10}: {value:.4f}")
    lines.append("PASSED" if report["passed"] else "FAILED: " + "; ".join(report["failures"]))
    return "\n".join(lines)


@_sharded
def cmd_sweep(args) -> int:
    from ..energy.model import load_profile
    from .sweep import threshold_sweep
    graph, program = _load(args)
    load_profile(args.profile)                # a bad profile fails before the runs
    batch = _batch(args, program)
    try:
        gammas = [float(g) for g in args.gammas.split(",") if g.strip()]
    except ValueError:
        raise SpikedeployError(f"--gammas must be comma-separated numbers, got {args.gammas!r}")
    if not gammas:
        raise SpikedeployError("--gammas names no threshold scale")
    targets = None
    if args.targets:
        from .inputs import load_npy
        targets = load_npy(args.targets, "targets")
        if targets.shape[0] != batch.x.shape[1]:
            raise SpikedeployError(f"{args.targets}: {targets.shape[0]} targets for "
                                   f"{batch.x.shape[1]} samples")
        out_size = program.ops[program.outputs[0]].size
        if targets.size != batch.x.shape[1] * out_size:
            raise SpikedeployError(f"{args.targets}: shape {targets.shape}, expected "
                                   f"({batch.x.shape[1]}, {out_size}): one output per sample")
    rows = threshold_sweep(graph, program, batch, gammas, backend=args.backend,
                           precision=args.precision, profile=args.profile, targets=targets,
                           scale_out=args.scale_out, engine=_engine(args, args.precision))
    _say(f"threshold guidance sweep ({args.backend}, {args.precision}, {batch.source}); "
         f"{describe_convention(program.metadata)}")
    from ..tables import terminal_table
    keys = ["threshold_scale", "accuracy", "mse", "spikes", "energy_per_inference_pJ",
            "ratio_snn_to_ann"]          # the JSON's keys, as the table's headings

    def cell(key, value):
        if value is None:
            return "-"
        return {"threshold_scale": f"{value:g}", "accuracy": f"{value:.4f}",
                "mse": f"{value:.4g}", "spikes": f"{value:,}",
                "energy_per_inference_pJ": f"{value:,.1f}",
                "ratio_snn_to_ann": f"{value:.4f}"}[key]
    _say(terminal_table([k.replace("_", " ") for k in keys],
                        [[cell(k, r.get(k)) for k in keys] for r in rows], text_cols=0,
                        whole_cols=0))
    if args.json:
        _emit_json(args, {"dt": program.dt, "backend": args.backend,
                          "precision": args.precision, "inputs": batch.origin,
                          "convention": recorded_convention(program.metadata), "rows": rows})
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo
    return run_demo(Path(args.out), samples=args.samples, say=_say)


def cmd_install_lava(args) -> int:
    from ..hw_sim.lava_install import install_lava
    code = install_lava(say=_say, quiet=args.quiet)
    if code:
        raise SpikedeployError(f"pip exited with code {code} while installing Lava")
    _say("Lava installed: spikedeploy check model.nir lists the Lava backends")
    return 0
