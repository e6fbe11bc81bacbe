"""The execution order of a graph with cycles, and which edges read the previous time step.

One definition shared by the reader of NIR graphs (:mod:`spikedeploy.ir.graph`)
and the exporter, which checks that the graph it writes will be read with
the recurrent edges its model has: a depth-first search from the inputs,
visiting successors in edge order; an edge to a node still on the search
stack closes a cycle and is *recurrent* (its target reads the source's value
from the previous step); the other edges form a DAG, executed in reverse
post-order.
"""
from __future__ import annotations


def depth_first_order(nodes, edges, roots) -> tuple[list, set, list]:
    """(execution order, recurrent edges, nodes no root reaches)."""
    succ = {n: [] for n in nodes}
    for a, b in edges:
        succ[a].append(b)
    state: dict = {}             # 1 = on the stack, 2 = done
    postorder: list = []
    recurrent: set = set()
    for root in roots:
        if root in state:
            continue
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                state[node] = 2
                postorder.append(node)
            elif state.get(nxt) == 1:
                recurrent.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    unreached = [n for n in nodes if n not in state]
    return postorder[::-1], recurrent, unreached
