"""One static arena for every activation tensor, planned from tensor lifetimes (greedy by size, first fit)."""

from __future__ import annotations

from .graph import Graph

ALIGN = 8


def lifetimes(graph: Graph) -> dict[int, tuple[int, int]]:
    """tensor index -> (first op writing it, last op reading it); graph inputs start at -1, outputs live to the end."""
    end = len(graph.operators)
    life: dict[int, list[int]] = {t: [-1, -1] for t in graph.inputs}
    for i, op in enumerate(graph.operators):
        for t in op.inputs:
            if t >= 0 and graph.tensors[t].data is None:
                life.setdefault(t, [i, i])[1] = i
        for t in op.outputs:
            life.setdefault(t, [i, i])
    for t in graph.outputs:
        life[t][1] = end
    return {t: (a, b) for t, (a, b) in life.items()}


def plan_arena(graph: Graph) -> tuple[dict[int, int], int]:
    """(tensor index -> byte offset, arena bytes); tensors whose lifetimes overlap never share bytes."""
    life = lifetimes(graph)
    order = sorted(life, key=lambda t: (-graph.tensors[t].nbytes, t))
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last)
    offsets: dict[int, int] = {}
    for t in order:
        size = -(-graph.tensors[t].nbytes // ALIGN) * ALIGN
        first, last = life[t]
        busy = sorted((o, s) for o, s, a, b in placed if not (b < first or last < a))
        offset = 0
        for o, s in busy:
            if offset + size <= o:
                break
            offset = max(offset, o + s)
        placed.append((offset, size, first, last))
        offsets[t] = offset
    return offsets, max((o + s for o, s, _, _ in placed), default=0)
