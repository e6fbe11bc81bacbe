"""Per-core resource map of a lowered Program on Loihi 1 / Loihi 2, per layer.

A *layer* is one neuron population (:class:`~spikedeploy.ir.ops.NeuronOp`,
:class:`~spikedeploy.ir.ops.ThresholdOp`) with the synaptic ops feeding it,
found by following its inputs back through Reshape and Delay ops to the
synaptic ops (Dense, Scale, Conv) and from those to their sources, neuron
populations or program inputs. Each (synaptic op, source) pair is one
*connection* (one nengo-loihi ``Synapse`` and ``Axon``); a source wired to
a population without weights is an identity connection; synaptic ops in a
chain are composed. Inputs (InputOp) take no cores: their spikes arrive from
outside, like nengo-loihi's ``SpikeInput``.

Accounting (nengo-loihi 1.1.0; file, function):

* compartments = neurons of the layer (``LoihiBlock.compartment``).
* input axons = sum over its connections of the source's size (block.py
  ``LoihiBlock.utilization``: ``sum(s.n_axons for s in self.synapses)``, a
  ``Synapse(n_pre)`` per connection, builder/connection.py); a recurrent
  connection counts like any other.
* output axons = the layer's neurons times the number of connections it
  feeds (block.py ``utilization``: ``sum(a.axon_slots() for a in self.axons)``,
  one ``Axon(n_neurons)`` per outgoing connection, one slot per axon for
  discrete synapses, ``Axon.slots_per_axon``). Usually that is the number of
  layers it feeds; two synaptic ops into the same layer are two connections.
* synapses: ``synapses_nonzero`` counts non-zero weights; ``synapses_total``
  every synapse of the ops' matrices (out x in for Dense, in-bounds taps for
  Conv, the diagonal for Scale).
* synapse memory (block.py ``SynapseConfig.bits_per_axon``, summed by
  ``Synapse.bits`` over input axons)::

      bits_per_weight = weight_bits + delay_bits + tag_bits   (+ idx_bits if compression == 0)
      bits_per_axon(n) = sum over blocks of S = n_synapses + 1 = 64 weights:
                         ceil((n_i * bits_per_weight + 4 + 6) / 64) * 64
                         (n_i the block's weights, 4 = synapse_idx_bits, 6 = n_synapses_bits,
                          64 = bits_per_memunit)

  with n = the axon's stored weights. ``Synapse.set_weights`` (discrete
  weights, dense or scipy-sparse) formats ``compression=3``, ``weight_bits=7``
  (``WEIGHT_BITS_MAP[7]`` = 8 real bits), ``n_synapses=63``, no index bits;
  ``discretize_synapse`` changes only ``weight_exp``, so weights stay 8 bits
  whatever their values. ``idx_bits`` (``Synapse.idx_bits``: the index of
  ``INDEX_BITS_MAP`` = [0, 6, 7, ..., 12] that holds ceil(log2(max index + 1)))
  is added only for ``compression=0``, nengo-loihi's population (Conv2D
  transform) weights; spikedeploy's Conv is counted as discrete synapses, what
  nengo-loihi does for the same conv given as a ``nengo.transforms.Sparse``
  (population axons with shared weights would need fewer input axons and
  bits). n is the axon's non-zero weights: a dense weight matrix with zeros
  is stored as sparse rows (nengo-loihi stores every entry of a dense numpy
  transform; the two agree when no weight is zero). nengo-loihi never sets
  ``delay_bits`` (default 0); here a connection through a NIR Delay of up to
  d steps gets ``delay_bits = ceil(log2(d + 1))``, Loihi's per-synapse delay
  field.

Split (builder/split_blocks.py ``split_block``)::

    n_split = max(ceil(compartments / 1024), ceil(input_axons / 4096),
                  ceil(output_axons / 4096), ceil(synapse_bits / (16384 * 64)))
    chunk   = ceil(neurons / n_split)     (BlockShape((chunk,), (neurons,)): contiguous chunks)
    cores   = ceil(neurons / chunk)

computed from the whole (unsplit) layer (``formula_cores``). nengo-loihi then
checks each split block against every ceiling (builder/validate.py
``validate_block``) and raises if one is exceeded; here each chunk is checked
the same way and, where one fails, the layer takes the next larger number of
equal chunks until every chunk fits ("fewest equal chunks"): per chunk,
input axons are the source neurons with a weight into the chunk
(``split_synapse`` keeps only those), synapse bits sum ``bits_per_axon`` over
the weights into the chunk, and output axons are, per connection, the
chunk's neurons with a weight into each core of the target layer
(``split_axon``: one axon per new target synapse), so a layer feeding a split
layer may need more cores itself (iterated to a fixed point). A layer that
does not fit even one neuron per core is reported with ``fits = False`` and
the ceiling in ``problem`` (nengo-loihi raises a BuildError there).
``limiting`` names the ceiling that forced the split: the largest term of
``n_split`` (ties: the one closest to full), or the one a chunk failed last
when the check added cores; for a one-core layer the ceiling closest to full.
Layers take distinct cores (allocators.py ``GreedyChip``: one block per
core) and chips = ceil(cores / cores_per_chip).

Measured activity (``records``, op name -> (T, N, size) as in
``SimResult.records``; an event is a non-zero output), per layer and step,
averaged over steps and samples:

* ``spikes_per_core_per_step``: the layer's events / cores;
  ``busiest_core_spikes_per_step`` the most of one core.
* ``traffic_per_step``: spike messages to other cores: each event of neuron
  i, per connection, times the number of cores of the target layer that i has
  a weight into (all of them for dense weights: events x target cores).
* ``busiest_core_synops_per_step``: per core, the events into its input axons
  times their fan-out into that core (the synaptic operations it performs);
  the largest over the layer's cores, a proxy of the step's latency.

Chip profiles are TOML files (``chips/loihi1.toml``, ``chips/loihi2.toml``) with
every number and its source; Loihi 2's is an estimate (see its ``note``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse

from ...errors import SpikedeployError
from ...settings_files import parse_toml, read_settings_text
from ...ir.ops import DelayOp, InputOp, NeuronOp, OutputOp, Program, ReshapeOp

CHIPS_DIR = Path(__file__).parent / "chips"
CEILINGS = ("compartments", "input_axons", "output_axons", "synapse_memory")
_LIMIT_KEYS = ("compartments", "input_axons", "output_axons", "synapse_memory_bits",
               "cores_per_chip", "compartment_profiles")
_FORMAT_KEYS = ("weight_bits", "tag_bits", "synapses_per_block", "block_header_bits",
                "memory_word_bits")
_CAN_BE_ZERO = {"tag_bits"}


# --- chip profiles ----------------------------------------------------------------------

@dataclass(frozen=True)
class ChipProfile:
    """Per-core ceilings and synapse-memory format of one chip, each number with its source."""

    name: str
    description: str
    compartments: int
    input_axons: int
    output_axons: int
    synapse_memory_bits: int
    cores_per_chip: int
    compartment_profiles: int
    weight_bits: int
    tag_bits: int
    synapses_per_block: int
    block_header_bits: int
    memory_word_bits: int
    estimate: bool = False
    note: str = ""
    sources: dict = field(default_factory=dict)
    path: str = ""

    def limit(self, ceiling: str) -> int:
        """The per-core ceiling named in :data:`CEILINGS`."""
        return self.synapse_memory_bits if ceiling == "synapse_memory" else getattr(self, ceiling)

    def to_dict(self) -> dict:
        return asdict(self)


def _chip_path(name_or_path) -> Path:
    text = str(name_or_path)
    path = Path(text)
    if text.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise SpikedeployError(f"chip profile '{text}' not found")
        return path
    key = text.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    known = sorted(p.stem for p in CHIPS_DIR.glob("*.toml"))
    if key not in known:
        raise SpikedeployError(f"unknown chip '{text}' (known: {', '.join(known)}; "
                               "or a path to a .toml profile)")
    return CHIPS_DIR / f"{key}.toml"


def load_chip(name_or_path) -> ChipProfile:
    """A chip profile by name (``loihi1``, ``loihi2``) or from a TOML file's path."""
    if isinstance(name_or_path, ChipProfile):
        return name_or_path
    path = _chip_path(name_or_path)
    data = parse_toml(read_settings_text(path, "chip profile"), f"chip profile {path}")
    if not isinstance(data, dict):
        raise SpikedeployError(f"chip profile {path}: expected a TOML table")
    limits, fmt = data.get("limits", {}), data.get("synapse_format", {})
    sources = data.get("sources", {})
    for table, value in (("limits", limits), ("synapse_format", fmt), ("sources", sources)):
        if not isinstance(value, dict):
            raise SpikedeployError(f"chip profile {path}: [{table}] must be a table")
    values = {}
    for table, keys in (("limits", _LIMIT_KEYS), ("synapse_format", _FORMAT_KEYS)):
        section = limits if table == "limits" else fmt
        for key in keys:
            value = section.get(key)
            low = 0 if key in _CAN_BE_ZERO else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise SpikedeployError(f"chip profile {path}: [{table}] {key} must be an "
                                       f"integer >= {low}, got {value!r}")
            if not isinstance(sources.get(key), str) or not sources[key].strip():
                raise SpikedeployError(f"chip profile {path}: [sources] has no source for {key}")
            values[key] = value
    return ChipProfile(name=str(data.get("name", path.stem)),
                       description=str(data.get("description", "")),
                       estimate=bool(data.get("estimate", False)), note=str(data.get("note", "")),
                       sources={k: sources[k] for k in values}, path=str(path), **values)


def bits_per_axon(n_weights, chip: ChipProfile, delay_bits: int = 0) -> np.ndarray:
    """nengo-loihi's ``SynapseConfig.bits_per_axon`` for axons holding ``n_weights`` weights
    each (an array), discrete weights (compression 3: no index bits)."""
    n = np.asarray(n_weights, dtype=np.int64)
    per_weight = chip.weight_bits + delay_bits + chip.tag_bits
    per_block, word = chip.synapses_per_block, chip.memory_word_bits

    def rounded(k):
        return -word * (-(k * per_weight + chip.block_header_bits) // word)

    full, rest = np.divmod(n, per_block)
    return full * rounded(per_block) + np.where(rest > 0, rounded(rest), 0)


# --- layers and connections ---------------------------------------------------------------

@dataclass
class _Conn:
    """One connection: ``source`` -> ``target`` through ``ops`` (the synaptic ops, composed)."""
    source: str
    target: str
    ops: list
    rows: np.ndarray           # target neuron of each non-zero weight
    cols: np.ndarray           # source neuron of each non-zero weight
    source_size: int
    total: int                 # synapses, zero weights included
    delay: int

    @property
    def name(self) -> str:
        return "*".join(self.ops) if self.ops else f"{self.source}->{self.target}"

    @property
    def delay_bits(self) -> int:
        return int(math.ceil(math.log2(self.delay + 1))) if self.delay > 0 else 0


def _binary(matrix) -> sparse.csr_matrix:
    m = sparse.csr_matrix(matrix, copy=True)     # edited in place: never the op's own arrays
    m.eliminate_zeros()
    m.data = np.ones_like(m.data, dtype=np.float64)
    return m


def _all_synapses(op) -> int:
    """Every synapse of the op, zero weights included: its matrix with all weights one
    (a convolution's in-bounds taps; padding is never a synapse)."""
    return int(_binary(op.matrix(np.ones_like(np.asarray(op.weights, np.float64)))).nnz)


class _Tracer:
    """Sources of an op's output: (source population/input, structure, synaptic ops, delay)."""

    def __init__(self, program: Program):
        self.program = program
        self.cache: dict[str, list] = {}
        self.visiting: set[str] = set()
        self.used_synaptic: set[str] = set()

    def sources(self, name: str) -> list:
        if name in self.cache:
            return self.cache[name]
        op = self.program.ops[name]
        if isinstance(op, (NeuronOp, InputOp)):
            return [(name, None, [], 0, None)]
        if name in self.visiting:
            raise SpikedeployError(f"op '{name}' is in a cycle with no neuron population: "
                                   "no resource map")
        self.visiting.add(name)
        out = []
        if op.synaptic:
            m = _binary(op.matrix())
            total = _all_synapses(op)
            self.used_synaptic.add(name)
            for s in op.inputs:
                for src, struct, ops, delay, _t in self.sources(s):
                    composed = m if struct is None else _binary(m @ struct)
                    out.append((src, composed, ops + [name], delay,
                                total if struct is None else int(composed.nnz)))
        elif isinstance(op, (ReshapeOp, DelayOp, OutputOp)) or type(op).copies_input:
            for s in op.inputs:
                for src, struct, ops, delay, t in self.sources(s):
                    out.append((src, struct, ops, delay + op.max_delay, t))
        else:
            raise SpikedeployError(f"op '{name}' ({type(op).__name__}) has no resource-map rule")
        self.visiting.discard(name)
        self.cache[name] = out
        return out


def _connections(program: Program, tracer: _Tracer) -> dict[str, list[_Conn]]:
    conns = {}
    for name, op in program.ops.items():
        if not isinstance(op, NeuronOp):
            continue
        conns[name] = []
        for s in op.inputs:
            for src, struct, ops, delay, total in tracer.sources(s):
                size = program.ops[src].size
                if struct is None:                      # wired without weights: one-to-one
                    struct = sparse.identity(size, format="csr")
                    total = size
                coo = struct.tocoo()
                conns[name].append(_Conn(src, name, ops, coo.row.astype(np.int64),
                                         coo.col.astype(np.int64), size, int(total), delay))
    return conns


# --- per-chunk usage ----------------------------------------------------------------------

def _n_chunks(n: int, chunk: int) -> int:
    return -(-n // chunk)


def _pair_counts(rows, cols, row_chunk: int, n_cols: int):
    """Distinct (row chunk, col) pairs and the number of entries in each."""
    keys = (rows // row_chunk) * n_cols + cols
    uniq, counts = np.unique(keys, return_counts=True)
    return uniq // n_cols, uniq % n_cols, counts


def _profiles(op: NeuronOp, chunk: int) -> int:
    """Distinct compartment profiles (12-bit du, dv) of the fullest core."""
    p = getattr(op, "params", None)
    if p is None:
        return 1
    n = op.size
    du = np.broadcast_to(np.round(np.asarray(p.du, np.float64) * 4096).reshape(-1), (n,))
    dv = np.broadcast_to(np.round(np.asarray(p.dv, np.float64) * 4096).reshape(-1), (n,))
    best = 0
    for start in range(0, n, chunk):
        pairs = np.stack([du[start:start + chunk], dv[start:start + chunk]], axis=1)
        best = max(best, len(np.unique(pairs, axis=0)))
    return best


class _Layout:
    """Everything the split needs, and the per-chunk usage for a given chunking."""

    def __init__(self, program: Program, chip: ChipProfile, conns: dict[str, list[_Conn]]):
        self.program, self.chip, self.conns = program, chip, conns
        self.size = {name: program.ops[name].size for name in conns}
        self.outgoing: dict[str, list[_Conn]] = {name: [] for name in conns}
        for layer_conns in conns.values():
            for c in layer_conns:
                if c.source in self.outgoing:
                    self.outgoing[c.source].append(c)

    def totals(self, name: str) -> dict:
        """The unsplit layer's usage, as split_block computes it."""
        n = self.size[name]
        bits = 0
        for c in self.conns[name]:
            per_axon = np.bincount(c.cols, minlength=c.source_size)
            bits += int(bits_per_axon(per_axon, self.chip, c.delay_bits).sum())
        return {"compartments": n,
                "input_axons": sum(c.source_size for c in self.conns[name]),
                "output_axons": n * len(self.outgoing[name]),
                "synapse_memory": bits}

    def usage(self, name: str, chunk: int, chunks: dict) -> dict:
        """Per-chunk usage arrays of layer ``name`` split into chunks of ``chunk`` neurons;
        ``chunks``: the current chunk size of every layer (for the output axons)."""
        n = self.size[name]
        k = _n_chunks(n, chunk)
        comp = np.minimum(chunk, n - chunk * np.arange(k)).astype(np.int64)
        in_ax = np.zeros(k, np.int64)
        bits = np.zeros(k, np.int64)
        for c in self.conns[name]:
            core, _col, count = _pair_counts(c.rows, c.cols, chunk, c.source_size)
            in_ax += np.bincount(core, minlength=k)
            bits += np.bincount(core, weights=bits_per_axon(count, self.chip, c.delay_bits),
                                minlength=k).astype(np.int64)
        out_ax = np.zeros(k, np.int64)
        for c in self.outgoing[name]:
            target_chunk = chunk if c.target == name else chunks[c.target]
            _core, col, _count = _pair_counts(c.rows, c.cols, target_chunk, c.source_size)
            out_ax += np.bincount(col // chunk, minlength=k)
        return {"compartments": comp, "input_axons": in_ax, "output_axons": out_ax,
                "synapse_memory": bits}

    def over(self, usage: dict) -> list[str]:
        return [c for c in CEILINGS if int(usage[c].max(initial=0)) > self.chip.limit(c)]


def _formula_split(totals: dict, chip: ChipProfile) -> tuple[int, str]:
    """split_block's n_split and the ceiling behind it (ties: the one closest to full)."""
    terms = {c: (-(-totals[c] // chip.limit(c)), totals[c] / chip.limit(c)) for c in CEILINGS}
    limiting = max(CEILINGS, key=lambda c: terms[c])
    return max(1, terms[limiting][0]), limiting


# --- the map ----------------------------------------------------------------------------

@dataclass
class LayerResources:
    """One layer (neuron population) on the chip; usage per core is the fullest core's."""

    name: str
    op_type: str
    neurons: int
    cores: int
    neurons_per_core: int
    limiting: str
    fits: bool
    problem: str
    formula_cores: int
    sources: list
    targets: list
    connections: list
    input_axons: int
    output_axons: int
    synapses_nonzero: int
    synapses_total: int
    weight_bits: int
    delay_bits: int
    synapse_bits: int
    compartment_profiles: int
    max_core: dict
    utilisation: float
    spikes_per_step: float | None = None
    spikes_per_core_per_step: float | None = None
    busiest_core_spikes_per_step: float | None = None
    traffic_per_step: float | None = None
    busiest_core_synops_per_step: float | None = None


@dataclass
class ResourceMap:
    chip: ChipProfile
    layers: list
    totals: dict
    notes: list = field(default_factory=list)

    def layer(self, name: str) -> LayerResources:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {"chip": self.chip.to_dict(), "layers": [asdict(lay) for lay in self.layers],
                "totals": dict(self.totals), "notes": list(self.notes)}


def _split_all(layout: _Layout, chip: ChipProfile):
    """Chunk size, limiting ceiling and problem of every layer (fixed point over layers)."""
    names = list(layout.conns)
    chunks, limiting, problem, formula = {}, {}, {}, {}
    for name in names:
        k, lim = _formula_split(layout.totals(name), chip)
        n = layout.size[name]
        chunks[name] = -(-n // k)
        formula[name] = _n_chunks(n, chunks[name])
        limiting[name], problem[name] = lim, ""
    changed = True
    while changed:
        changed = False
        for name in names:
            if problem[name]:
                continue
            n, start = layout.size[name], chunks[name]
            failing = layout.over(layout.usage(name, start, chunks))
            if not failing:
                continue
            single = layout.over(layout.usage(name, 1, chunks))
            if single:
                problem[name] = (f"{single[0]} exceeded even with one neuron per core "
                                 f"(limit {chip.limit(single[0])})")
                limiting[name] = single[0]
                continue
            count = _n_chunks(n, start)
            while failing and count < n:
                count += 1
                chunk = -(-n // count)
                if chunk == chunks[name]:
                    continue
                limiting[name] = failing[0]
                chunks[name] = chunk
                failing = layout.over(layout.usage(name, chunk, chunks))
            if failing:       # pragma: no cover - one neuron per core fitted above
                problem[name] = f"{failing[0]} exceeded even with one neuron per core"
            changed = True
    return chunks, limiting, problem, formula


def _events(records: dict, name: str) -> np.ndarray:
    """Mean events per step of each element of op ``name``: (size,)."""
    if name not in records:
        raise SpikedeployError(f"no record of '{name}': run the simulation with record='all'")
    rec = np.asarray(records[name])
    if rec.ndim != 3:
        raise SpikedeployError(f"record of '{name}' must be (T, N, size), got shape {rec.shape}")
    return (rec != 0).mean(axis=(0, 1))


def resource_map(program: Program, chip="loihi1", records: dict | None = None) -> ResourceMap:
    """Per-layer cores of ``program`` on ``chip`` (name, path or :class:`ChipProfile`);
    with ``records`` (op name -> (T, N, size), ``SimResult.records``) also its activity."""
    chip = load_chip(chip)
    tracer = _Tracer(program)
    conns = _connections(program, tracer)
    layout = _Layout(program, chip, conns)
    chunks, limiting, problem, formula = _split_all(layout, chip)
    notes = []
    unused = [n for n, op in program.ops.items() if op.synaptic and n not in tracer.used_synaptic]
    if unused:
        notes.append("synaptic ops feeding no neuron population take no cores: "
                     + ", ".join(unused))

    rates = {}
    if records is not None:
        for name in list(conns) + [c.source for cs in conns.values() for c in cs]:
            if name not in rates:
                rates[name] = _events(records, name)

    layers = []
    for name, layer_conns in conns.items():
        op = program.ops[name]
        n, chunk = layout.size[name], chunks[name]
        totals = layout.totals(name)
        use = layout.usage(name, chunk, chunks)
        max_core = {c: int(use[c].max(initial=0)) for c in CEILINGS}
        profiles = _profiles(op, chunk)
        if profiles > chip.compartment_profiles and not problem[name]:
            # nengo-loihi's validate_core refuses such a core; the split does not address it
            problem[name] = (f"{profiles} compartment profiles (distinct decays) on one core, "
                             f"limit {chip.compartment_profiles}")
        cores = _n_chunks(n, chunk)
        layer = LayerResources(
            name=name, op_type=type(op).__name__, neurons=n, cores=cores,
            neurons_per_core=chunk, limiting=limiting[name], fits=not problem[name],
            problem=problem[name], formula_cores=formula[name],
            sources=sorted({c.source for c in layer_conns}),
            targets=sorted({c.target for c in layout.outgoing[name]}),
            connections=[c.name for c in layer_conns],
            input_axons=totals["input_axons"], output_axons=totals["output_axons"],
            synapses_nonzero=int(sum(len(c.rows) for c in layer_conns)),
            synapses_total=int(sum(c.total for c in layer_conns)),
            weight_bits=chip.weight_bits,
            delay_bits=max((c.delay_bits for c in layer_conns), default=0),
            synapse_bits=totals["synapse_memory"], compartment_profiles=profiles,
            max_core=max_core,
            utilisation=round(max(max_core[c] / chip.limit(c) for c in CEILINGS), 4))
        if records is not None:
            _activity(layer, layout, chunks, rates)
        layers.append(layer)

    cores = sum(lay.cores for lay in layers)
    totals = {"chip": chip.name, "estimate": chip.estimate, "layers": len(layers),
              "neurons": sum(lay.neurons for lay in layers), "cores": cores,
              "chips": -(-cores // chip.cores_per_chip),
              "synapses_nonzero": sum(lay.synapses_nonzero for lay in layers),
              "synapse_bits": sum(lay.synapse_bits for lay in layers),
              "fits": all(lay.fits for lay in layers)}
    if records is not None:
        totals["spikes_per_step"] = float(sum(lay.spikes_per_step for lay in layers))
        totals["traffic_per_step"] = float(sum(lay.traffic_per_step for lay in layers))
        totals["busiest_core_synops_per_step"] = float(
            max((lay.busiest_core_synops_per_step for lay in layers), default=0.0))
    return ResourceMap(chip=chip, layers=layers, totals=totals, notes=notes)


def _activity(layer: LayerResources, layout: _Layout, chunks: dict, rates: dict) -> None:
    name, chunk, k = layer.name, layer.neurons_per_core, layer.cores
    own = rates[name]
    per_core = np.bincount(np.arange(layer.neurons) // chunk, weights=own, minlength=k)
    traffic = 0.0
    for c in layout.outgoing[name]:
        core, col, _count = _pair_counts(c.rows, c.cols, chunks[c.target], c.source_size)
        if c.target == name:                      # a recurrent synapse: its own core is local
            away = core != col // chunk
            core, col = core[away], col[away]
        traffic += float(own[col].sum())          # one message per (event, other core reached)
    synops = np.zeros(k)
    for c in layout.conns[name]:
        synops += np.bincount(c.rows // chunk, weights=rates[c.source][c.cols], minlength=k)
    layer.spikes_per_step = float(own.sum())
    layer.spikes_per_core_per_step = float(own.sum() / k)
    layer.busiest_core_spikes_per_step = float(per_core.max(initial=0.0))
    layer.traffic_per_step = traffic
    layer.busiest_core_synops_per_step = float(synops.max(initial=0.0))


# --- output -----------------------------------------------------------------------------
