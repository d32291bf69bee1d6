"""A flow checked as a graph, before any call runs it.

``problems(flow, queues)`` lists every problem, in a stable order (file order
of the nodes); ``validate_flow`` raises the first. Each is a ``FlowError``
reading ``flow <name>, node <id>: [<key>: ]<problem>``. The rules:

* a missing target: ``start``, ``survey`` or an exit of a node names no node;
* an unknown queue: a queue, voicemail or callback node names a queue that is
  not configured (skipped when ``queues`` is None);
* a var read before any node could collect it: a lookup by account number or
  a callback's ``number_var`` names an attribute no collect node sets;
* an unreachable node: neither the start nor the survey entry leads to it;
* a loop that never waits for the caller (say -> branch -> say ...): it would
  spin without end;
* an input loop with no exit: a cycle through menus or collects from which
  every choice and every failure branch lead back into the cycle, and no node
  in it can end the call;
* unbounded retries: following ``failure`` branches (the way a caller who
  never presses a key goes) comes back to an input node already passed, so a
  silent caller would loop for ever;
* a survey entry from which no survey node is reachable;
* a recording left paused: from a ``recording`` pause, a path reaches a
  ``queue`` or ``transfer`` node (the caller goes on to a person) without
  passing a ``recording`` resume.

Value checks (digit counts, survey scale, keys, languages, prompts) are the
loader's (``ivr.loader``); this module takes a ``Flow`` however it was built.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable

from ivr.errors import FlowError
from ivr.model import (
    CALLER_INPUT_KINDS,
    CallbackNode,
    CollectNode,
    Flow,
    LookupNode,
    MenuNode,
    QueueNode,
    RecordingNode,
    SurveyNode,
    TransferNode,
    VoicemailNode,
    exits,
)

__all__ = ["problems", "validate_flow"]

_RETRY_KINDS = frozenset({"menu", "collect", "survey"})
_CAN_END = frozenset({"callback", "transfer"})  # nodes with exits that may also end the call


def validate_flow(flow: Flow, queues: Collection[str] | None = None) -> None:
    """Raise the first of ``problems(flow, queues)``, if any."""
    found = problems(flow, queues)
    if found:
        raise found[0]


def problems(flow: Flow, queues: Collection[str] | None = None) -> list[FlowError]:
    out: list[FlowError] = []
    nodes = flow.nodes
    if flow.start not in nodes:
        out.append(_missing(flow, None, "start", flow.start))
    if flow.survey is not None and flow.survey not in nodes:
        out.append(_missing(flow, None, "survey", flow.survey))

    collected = {n.var for n in nodes.values() if isinstance(n, CollectNode)}
    for node in nodes.values():
        for key, target in exits(node):
            if target not in nodes:
                out.append(_missing(flow, node.id, key, target))
        if (
            queues is not None
            and isinstance(node, QueueNode | VoicemailNode | CallbackNode)
            and node.queue not in queues
        ):
            out.append(
                FlowError(
                    flow.name,
                    node.id,
                    f"unknown queue {node.queue!r} (configured: {', '.join(queues) or 'none'})",
                    key="queue",
                )
            )
        read: tuple[str, str | None] | None = None
        if isinstance(node, LookupNode) and node.by == "account_number":
            read = ("var", node.var)
        elif isinstance(node, CallbackNode) and node.number_var is not None:
            read = ("number_var", node.number_var)
        if read is not None and read[1] not in collected:
            out.append(
                FlowError(
                    flow.name,
                    node.id,
                    f"{read[1]!r} is never collected (no collect node has var = {read[1]!r})",
                    key=read[0],
                )
            )

    graph = {node.id: tuple(t for _, t in exits(node) if t in nodes) for node in nodes.values()}
    reach = {n: _reachable(graph, graph[n]) for n in nodes}

    entries = [e for e in (flow.start, flow.survey) if e is not None and e in nodes]
    reachable = set(entries)
    for entry in entries:
        reachable |= reach[entry]
    for node in nodes.values():
        if node.id not in reachable:
            where = f"the start node {flow.start!r}"
            if flow.survey is not None:
                where += f" or the survey node {flow.survey!r}"
            out.append(FlowError(flow.name, node.id, f"unreachable from {where}"))

    seen: set[frozenset[str]] = set()
    for node_id in nodes:
        if node_id not in reach[node_id]:
            continue
        scc = frozenset(v for v in reach[node_id] if node_id in reach[v])
        if scc in seen:
            continue
        seen.add(scc)
        cycle = " -> ".join(_cycle(graph, node_id, scc))
        if not any(nodes[v].kind in CALLER_INPUT_KINDS for v in scc):
            out.append(
                FlowError(flow.name, node_id, f"a loop that never waits for the caller: {cycle}")
            )
            continue
        leaves = any(t not in scc for v in scc for t in graph[v])
        if not leaves and not any(nodes[v].kind in _CAN_END for v in scc):
            out.append(
                FlowError(
                    flow.name,
                    node_id,
                    f"an input loop with no exit: every choice and failure branch of {cycle} "
                    "leads back into it",
                )
            )

    out.extend(_silent_caller_loops(flow, graph))
    out.extend(_left_paused(flow, graph))

    if flow.survey is not None and flow.survey in nodes:
        part = {flow.survey} | reach[flow.survey]
        if not any(isinstance(nodes[v], SurveyNode) for v in part):
            out.append(
                FlowError(
                    flow.name,
                    flow.survey,
                    "the survey starts here but reaches no survey node",
                    key=None,
                )
            )
    return out


def _missing(flow: Flow, node: str | None, key: str, target: str) -> FlowError:
    return FlowError(flow.name, node, f"names the node {target!r}, which does not exist", key=key)


def _reachable(graph: dict[str, tuple[str, ...]], starts: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    todo = deque(starts)
    while todo:
        n = todo.popleft()
        if n in seen:
            continue
        seen.add(n)
        todo.extend(graph[n])
    return seen


def _cycle(graph: dict[str, tuple[str, ...]], start: str, within: frozenset[str]) -> list[str]:
    """The shortest path ``start -> ... -> start`` inside ``within`` (BFS)."""
    parent: dict[str, str] = {}
    todo = deque([start])
    while todo:
        n = todo.popleft()
        for t in graph[n]:
            if t not in within:
                continue
            if t == start:
                path = [n]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if t not in parent:
                parent[t] = n
                todo.append(t)
    return [start]  # pragma: no cover - callers pass a node on a cycle


def _silent_caller_loops(flow: Flow, graph: dict[str, tuple[str, ...]]) -> list[FlowError]:
    """Input nodes joined by the route a caller who never presses a key takes:
    a miss leads to ``failure``, then through nodes that need no key to the
    next input node. A cycle there means retries without bound."""
    nodes = flow.nodes
    fail_graph: dict[str, tuple[str, ...]] = {}
    for node in nodes.values():
        if not isinstance(node, MenuNode | CollectNode | SurveyNode):
            continue
        if node.failure not in nodes:
            fail_graph[node.id] = ()
            continue
        hits: list[str] = []
        seen: set[str] = set()
        todo = deque([node.failure])
        while todo:
            n = todo.popleft()
            if n in seen:
                continue
            seen.add(n)
            if nodes[n].kind in _RETRY_KINDS:
                hits.append(n)
            elif nodes[n].kind not in CALLER_INPUT_KINDS:
                todo.extend(graph[n])
        fail_graph[node.id] = tuple(hits)
    out: list[FlowError] = []
    reported: set[frozenset[str]] = set()
    for node_id, targets in fail_graph.items():
        reach = _reachable(fail_graph, targets)
        if node_id not in reach:
            continue
        loop = frozenset(v for v in reach if node_id in _reachable(fail_graph, fail_graph[v]))
        if loop in reported:
            continue
        reported.add(loop)
        cycle = " -> ".join(_cycle(fail_graph, node_id, loop))
        out.append(
            FlowError(
                flow.name,
                node_id,
                f"unbounded retries: a caller who never presses a key goes round {cycle} "
                "for ever (failure branches lead back here)",
                key="failure",
            )
        )
    return out


def _left_paused(flow: Flow, graph: dict[str, tuple[str, ...]]) -> list[FlowError]:
    """Pauses from which a queue or transfer node is reachable without a resume."""
    nodes = flow.nodes
    out: list[FlowError] = []
    for node in nodes.values():
        if not isinstance(node, RecordingNode) or node.action != "pause":
            continue
        seen: set[str] = set()
        todo = deque(graph[node.id])
        while todo:
            n = todo.popleft()
            if n in seen:
                continue
            seen.add(n)
            here = nodes[n]
            if isinstance(here, RecordingNode) and here.action == "resume":
                continue
            if isinstance(here, QueueNode | TransferNode):
                out.append(
                    FlowError(
                        flow.name,
                        node.id,
                        f"the recording paused here is still paused at {here.kind} node "
                        f"{n!r}: put a recording node with action = 'resume' before it",
                    )
                )
                break
            todo.extend(graph[n])
    return out
