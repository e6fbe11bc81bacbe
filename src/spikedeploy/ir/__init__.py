"""The NIR-facing core shared by every backend: read, flatten, discretise, lower.

Like hls4ml's IR: a frontend (``load``) turns a NIR file into a graph, passes
(``graph``, ``lowering``, ``passes``) make it flat, ordered and discretised
into a Program of typed ops (``ops``), and backends (``spikedeploy.hw_sim``,
``spikedeploy.energy``) consume it through OpTables keyed by op class
(``op_table``). ``semantics`` and ``fixed_point`` define the arithmetic.
"""
from .load import graph_dt, read_nir
from .lowering import lower
from .ops import Program

__all__ = ["read_nir", "graph_dt", "Program", "lower"]
