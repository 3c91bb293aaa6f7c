"""One static arena for every activation tensor and every op's scratch, planned from lifetimes (greedy by size,
first fit)."""

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


def plan_arena(graph: Graph, scratch: dict[int, int] | None = None) -> tuple[dict[int, int], dict[int, int], int]:
    """(tensor index -> byte offset, op index -> offset of its scratch, arena bytes). ``scratch`` asks for
    working memory (bytes) live only while one op runs; regions whose lifetimes overlap never share bytes."""
    life = lifetimes(graph)
    items = [(("t", t), graph.tensors[t].nbytes, *life[t]) for t in life]
    items += [(("op", i), n, i, i) for i, n in (scratch or {}).items()]
    items.sort(key=lambda it: (-it[1], it[0][0] == "op", it[0][1]))
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last)
    offsets: dict[tuple[str, int], int] = {}
    for key, nbytes, first, last in items:
        size = -(-nbytes // ALIGN) * ALIGN
        busy = sorted((o, s) for o, s, a, b in placed if not (b < first or last < a))
        offset = 0
        for o, s in busy:
            if offset + size <= o:
                break
            offset = max(offset, o + s)
        placed.append((offset, size, first, last))
        offsets[key] = offset
    return ({k: o for (kind, k), o in offsets.items() if kind == "t"},
            {k: o for (kind, k), o in offsets.items() if kind == "op"},
            max((o + s for o, s, _, _ in placed), default=0))
