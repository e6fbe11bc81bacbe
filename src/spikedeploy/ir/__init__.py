"""The NIR-facing core shared by every backend: read, flatten, discretise, lower.

Like hls4ml's IR: a frontend (``load``) turns a NIR file into a graph, passes
(``graph``, ``program``) make it flat, ordered and discretised, and backends
(``spikedeploy.hw_sim``, ``spikedeploy.energy``) consume the resulting Program.
"""
from .load import read_nir, graph_dt
from .program import Program, lower

__all__ = ["read_nir", "graph_dt", "Program", "lower"]
