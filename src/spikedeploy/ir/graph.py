"""A NIR graph made flat and ordered: the structure every backend walks.

Nested NIRGraph nodes are inlined (inner names become ``outer.inner``), their
Input/Output nodes are removed as pass-through wires, and the nodes are put
in execution order. Edges that close a cycle are "recurrent": their target
reads the source's value from the previous time step.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import nir
import numpy as np

from ..errors import SpikedeployError
from ..graph_order import depth_first_order


@dataclass
class FlatGraph:
    nodes: dict[str, object]                   # name -> NIR node (no NIRGraph)
    edges: list[tuple[str, str]]
    inputs: list[str]                          # names of top-level Input nodes
    outputs: list[str]                         # names of top-level Output nodes
    order: list[str] = field(default_factory=list)
    recurrent: set = field(default_factory=set)  # edges read from the previous step
    metadata: dict = field(default_factory=dict)

    def predecessors(self, name: str) -> list[str]:
        return [a for a, b in self.edges if b == name]

    def successors(self, name: str) -> list[str]:
        return [b for a, b in self.edges if a == name]


def flatten_graph(graph: nir.NIRGraph) -> FlatGraph:
    flat = inline_graph(graph)
    order_graph(flat)
    return flat


def inline_graph(graph: nir.NIRGraph) -> FlatGraph:
    """Inline nested subgraphs and drop their Input/Output wires; not yet ordered."""
    nodes: dict[str, object] = {}
    edges: list[tuple[str, str]] = []
    _inline(graph, "", nodes, edges)
    for name in [n for n in nodes if "." in n and isinstance(nodes[n], (nir.Input, nir.Output))]:
        preds = [a for a, b in edges if b == name]
        succs = [b for a, b in edges if a == name]
        edges = [e for e in edges if name not in e]
        edges += [(a, b) for a in preds for b in succs]
        del nodes[name]
    inputs = sorted(n for n, v in nodes.items() if isinstance(v, nir.Input))
    outputs = sorted(n for n, v in nodes.items() if isinstance(v, nir.Output))
    return FlatGraph(nodes, edges, inputs, outputs, metadata=dict(graph.metadata or {}))


def _inline(graph: nir.NIRGraph, prefix: str, nodes: dict, edges: list) -> None:
    def resolve(endpoint: str, as_source: bool) -> str:
        head, _, tail = endpoint.partition(".")
        sub = graph.nodes.get(head)
        if isinstance(sub, nir.NIRGraph):
            if tail:
                return f"{prefix}{head}.{tail}"
            kind = nir.Output if as_source else nir.Input
            ports = [k for k, v in sub.nodes.items() if isinstance(v, kind)]
            if len(ports) != 1:
                raise SpikedeployError(
                    f"edge to subgraph '{prefix}{head}' is ambiguous: it has "
                    f"{len(ports)} {kind.__name__} nodes; name one as '{head}.<node>'")
            return f"{prefix}{head}.{ports[0]}"
        if endpoint not in graph.nodes:
            raise SpikedeployError(f"edge names unknown node '{prefix}{endpoint}'")
        return prefix + endpoint

    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            _inline(node, f"{prefix}{name}.", nodes, edges)
        else:
            nodes[prefix + name] = node
    for a, b in graph.edges:
        edges.append((resolve(a, True), resolve(b, False)))


def order_graph(g: FlatGraph) -> None:
    """Depth-first from the inputs: back edges are recurrent; the rest is a DAG."""
    if not g.inputs:
        raise SpikedeployError("graph has no Input node")
    g.order, recurrent, unreached = depth_first_order(g.nodes, g.edges, g.inputs)
    g.recurrent |= recurrent
    if unreached:
        raise SpikedeployError(
            f"nodes not reachable from any Input (a cycle with no input, or "
            f"disconnected): {', '.join(sorted(unreached))}")


def node_shape(node) -> tuple | None:
    """Output shape of a NIR node (batch excluded), if the node declares it."""
    out = getattr(node, "output_type", None) or {}
    shape = next(iter(out.values()), None) if out else None
    if shape is None:
        return None
    return tuple(int(s) for s in np.atleast_1d(shape))
