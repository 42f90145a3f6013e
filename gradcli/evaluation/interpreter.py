"""Evaluation: every node computed once, in topological order, with numpy.

A value is dropped as soon as its last user has been computed, so memory follows the widest part
of the graph, not its size. The first node to turn finite inputs into nan or inf is recorded as a
`Fault` with the reason (outside the domain, division by zero, overflow), so that a numerical
problem is reported where it starts rather than where it ends up.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..graph.nodes import Node, collector_paused, toposort
from ..graph.shapes import infer_shapes
from ..language.limits import check_elements
from ..language.source import GradcliError
from ..primitives import REGISTRY
from .faults import Fault
from .underflow import CARRIERS, ExactSizes, underflow_watched, underflows


def evaluate(
    outputs: Sequence[Node],
    env: Mapping[str, Any],
    dtype: type[np.generic] = np.float64,
    keep_all: bool = False,
    batched: bool = False,
) -> tuple[list[Any], list[Fault], dict[Node, Any]]:
    """Values of `outputs` with variables bound by `env`; also the faults, and all values if asked.

    Inputs are cast to `dtype` (float64 or float32; complex inputs stay complex). With `batched`,
    every variable has a leading batch axis (of length B, or 1 for a value shared by the batch),
    and the program is evaluated once per batch item, in one numpy pass per node: values that
    depend on a variable carry the batch axis, elementwise primitives align the ranks of their
    inputs, and the others use their batch rule from the registry.
    """
    with collector_paused():
        return _evaluate(outputs, env, dtype, keep_all, batched)


def _evaluate(outputs, env, dtype, keep_all, batched):
    order = toposort(outputs)
    small = underflow_watched(order)
    try:
        watched = _watched(order, outputs)
        if not (keep_all or batched) and _worth_threads(order, env):
            return _run_parallel(order, outputs, env, dtype, watched, small)
        return _run(order, outputs, env, dtype, keep_all, batched, watched, small)
    except _NonFinite:  # find where it started: every node checked, as it is computed
        return _run(order, outputs, env, dtype, keep_all, batched, None, small)


class _NonFinite(Exception):
    """A nan or inf (or an empty array, which can hide one) was seen: the evaluation starts
    over, checking every node."""


def _watched(order: Sequence[Node], outputs: Sequence[Node]) -> set[Node]:
    """The nodes whose values must be checked for a nan or inf so that none goes unseen: the
    outputs, and inputs of primitives that can hide one (exp(-inf) is 0, x/inf is 0). A nan or
    inf anywhere else always reaches one of them (through x + y, x·y, a sum), so the other
    arrays are not scanned, unless one turns up and the faults are wanted."""
    watched = set(outputs)
    for node in order:
        if node.inputs:
            passes = REGISTRY[node.op].passes_nonfinite
            watched.update(i for k, i in enumerate(node.inputs) if k not in passes)
    return watched


def _run(
    order: Sequence[Node],
    outputs: Sequence[Node],
    env: Mapping[str, Any],
    dtype: type[np.generic],
    keep_all: bool,
    batched: bool,
    watched: set[Node] | None,
    small: set[Node] = frozenset(),
) -> tuple[list[Any], list[Fault], dict[Node, Any]]:
    """One evaluation; with `watched`, only those nodes are checked, and the first nan or inf
    (or underflow in one of `small`) raises `_NonFinite`; without, every node is, and the
    faults are recorded."""
    uses: dict[Node, int] = {}
    for node in order:
        for inp in node.inputs:
            uses[inp] = uses.get(inp, 0) + 1
    keep = set(outputs)
    values: dict[Node, Any] = {}
    faults = _Faults()
    make = np.dtype(dtype).type
    shapes = infer_shapes(order, {n: np.shape(v)[1:] for n, v in env.items()}) if batched else {}
    if batched:  # every node's value carries the batch axis: items × batch must fit
        count = max((np.shape(v)[0] for v in env.values() if np.ndim(v)), default=1)
        widest = max(shapes.values(), key=math.prod, default=())
        check_elements((count, *widest), "a batch of values")
    in_batch: set[Node] = set()
    sizes = ExactSizes(batched)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's "mean of empty slice" and kin
        for node in order:
            if node.op == "const":
                value = _constant(node.value, make)
            elif node.op == "variable":
                value = _cast(env[node.name], make)
                if batched:
                    in_batch.add(node)
                if (watched is None or node in watched) and not _finite(value):
                    if watched is not None:
                        raise _NonFinite
                    faults.see(node, value, [])
            else:
                args = [values[i] for i in node.inputs]
                flags = [i in in_batch for i in node.inputs]
                try:
                    if any(flags):
                        in_batch.add(node)
                        value, args = _apply_batched(node, args, flags, shapes)
                    else:
                        value = REGISTRY[node.op].forward(*args, *node.attrs)
                except (ValueError, IndexError) as exc:
                    raise GradcliError(f"cannot evaluate: {exc}", node.span) from None
                if watched is not None:
                    if (node in watched and not _finite(value)) or _empty(value):
                        raise _NonFinite
                    if node in small and underflows(value, args):
                        raise _NonFinite
                else:
                    # An overflow at one point of a batch must not hide an underflow at another.
                    faults.see(node, value, args)
                    if node in small:
                        fault = sizes.see(node, value, args)
                        if fault is not None:
                            faults.found.append(fault)
                    elif node.op in CARRIERS and sizes.log2:
                        sizes.carry(node, value, args)
                if not keep_all:
                    for inp in node.inputs:
                        uses[inp] -= 1
                        if uses[inp] == 0 and inp not in keep:
                            values.pop(inp, None)
            values[node] = value
    found = faults.reaching(outputs) if watched is None else []
    return [values[o] for o in outputs], [sizes.with_rows(f) for f in found], values


class _Faults:
    """The faults of an evaluation that checks every node, with what each nan or inf reaches.

    A fault is kept if its nan or inf reaches an output, or an input of a node whose own value is
    finite that can hide it (exp(-inf) = 0, x/inf = 0): not if only a branch of `where` not
    taken at those elements held it, which no output sees (`passes_nonfinite` marks the inputs
    whose nan or inf always shows, where's branches among them). A variable given as nan or inf
    is always reported.
    """

    def __init__(self) -> None:
        self.found: list[Fault] = []
        self.taint: dict[Node, set[int]] = {}  # the faults behind each value that is not finite
        self.hidden: set[int] = set()  # faults whose nan or inf a finite value hid
        self.written: set[Node] = set()  # values whose inf comes from an inf the program wrote

    def see(self, node: Node, value: Any, args: list[Any]) -> None:
        taint = self.taint
        if not _finite(value):
            if any(i in taint for i in node.inputs):
                taint[node] = set().union(*(taint.get(i, ()) for i in node.inputs))
            elif all(_finite(a) for a in args) or self._nan_from_written(node, value, args):
                taint[node] = {len(self.found)}
                self.found.append(_fault(node, value, args))
            else:  # an inf the program wrote, passed on (x + inf): its meaning, not a fault
                self.written.add(node)
        elif taint:
            # An empty result swallows whatever its inputs held (a sum over a 0-length axis).
            passes = () if _empty(value) else REGISTRY[node.op].passes_nonfinite
            for k, i in enumerate(node.inputs):
                if k not in passes and i in taint:
                    self.hidden |= taint[i]

    def _nan_from_written(self, node: Node, value: Any, args: list[Any]) -> bool:
        """A nan made here from an inf the program wrote (x + inf - inf, 0·inf): a fault of its
        own. An inf that only passes on (x + inf, -inf·x) is the program's meaning, not one."""
        written = self.written
        made = [
            a
            for i, a in zip(node.inputs, args, strict=True)
            if i.op != "const" and i not in written
        ]
        if not all(_finite(a) for a in made) or not np.any(np.isnan(value)):
            return False
        return not any(np.any(np.isnan(a)) for a in args)

    def reaching(self, outputs: Sequence[Node]) -> list[Fault]:
        reached = set(self.hidden)
        for node in outputs:
            reached |= self.taint.get(node, set())
        traced = set().union(*self.taint.values()) if self.taint else set()
        return [
            f
            for k, f in enumerate(self.found)
            if k in reached or k not in traced or f.cause == "input"
        ]


# Arrays from this many elements take long enough in numpy's loops, which let go of the GIL,
# for independent nodes to run at once on two threads or more.
_PARALLEL_ELEMENTS = 1 << 17
_pool: Any = None  # a ThreadPoolExecutor, made on first use


def _forget_pool() -> None:
    """A forked child inherits the pool but not its threads: it makes its own."""
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _worth_threads(order: Sequence[Node], env: Mapping[str, Any]) -> bool:
    return (
        (os.cpu_count() or 1) > 1
        and len(order) > 4
        and max((np.size(v) for v in env.values()), default=0) >= _PARALLEL_ELEMENTS
    )


def _run_parallel(
    order: Sequence[Node],
    outputs: Sequence[Node],
    env: Mapping[str, Any],
    dtype: type[np.generic],
    watched: set[Node],
    small: set[Node] = frozenset(),
) -> tuple[list[Any], list[Fault], dict[Node, Any]]:
    """`_run` for large arrays: each node is computed as soon as its inputs are, on a pool of
    threads, so that independent parts of the graph (the value and each gradient) overlap.
    Every node computes the same numbers as in `_run`, whatever the order; a nan or inf raises
    `_NonFinite` as there, and the sequential run that follows finds where it started."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait  # logging: 4 ms

    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(min(4, os.cpu_count() or 1), thread_name_prefix="gradcli")
    make = np.dtype(dtype).type
    keep = set(outputs)
    values: dict[Node, Any] = {}
    waiting = {node: len(node.inputs) for node in order}
    users: dict[Node, list[Node]] = {}
    uses: dict[Node, int] = {}
    for node in order:
        for inp in node.inputs:
            users.setdefault(inp, []).append(node)
            uses[inp] = uses.get(inp, 0) + 1
    running: dict[Any, Node] = {}  # future -> node

    def done(node: Node, value: Any) -> None:
        values[node] = value
        for user in users.get(node, ()):
            waiting[user] -= 1
            if waiting[user] == 0:
                args = [values[i] for i in user.inputs]
                running[_pool.submit(_compute, user, args, user in watched, user in small)] = user
        for inp in node.inputs:
            uses[inp] -= 1
            if uses[inp] == 0 and inp not in keep:
                values.pop(inp, None)

    with warnings.catch_warnings():  # process-wide: it covers the threads too, as in _run
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            for node in order:
                if node.op == "const":
                    done(node, _constant(node.value, make))
                elif node.op == "variable":
                    value = _cast(env[node.name], make)
                    if node in watched and not _finite(value):
                        raise _NonFinite
                    done(node, value)
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: running[f].id):
                    node = running.pop(future)
                    value, finite = future.result()
                    if not finite:
                        raise _NonFinite
                    done(node, value)
        finally:
            wait(running)  # nothing is left computing in the background
    return [values[o] for o in outputs], [], values


def _compute(node: Node, args: list[Any], check: bool, small: bool) -> tuple[Any, bool]:
    """One node on a worker thread (numpy's error state is per thread: set here)."""
    with np.errstate(all="ignore"):
        try:
            value = REGISTRY[node.op].forward(*args, *node.attrs)
        except (ValueError, IndexError) as exc:
            raise GradcliError(f"cannot evaluate: {exc}", node.span) from None
        fine = (not check or _finite(value)) and not _empty(value)
        return value, fine and not (small and underflows(value, args))


def _apply_batched(
    node: Node, args: list[Any], flags: list[bool], shapes: Mapping[Node, tuple]
) -> tuple[Any, list[Any]]:
    """`node` over a batch; returns the value and the (aligned) arguments it was computed from."""
    prim = REGISTRY[node.op]
    items = [shapes[i] for i in node.inputs]
    if prim.partials is not None:  # elementwise: (b, *item) padded to the output's rank
        rank = len(shapes[node])
        aligned = [
            _align(a, item, rank) if batched else a
            for a, item, batched in zip(args, items, flags, strict=True)
        ]
        return prim.forward(*aligned, *node.attrs), aligned
    if prim.batch is not None:
        return prim.batch(args, flags, items, shapes[node], *node.attrs), args
    return _loop(prim, node, args, flags), args


def _align(value: Any, item: tuple[int, ...], rank: int) -> Any:
    value = np.asarray(value)
    target = value.shape[:1] + (1,) * (rank - len(item)) + tuple(item)
    return value if value.shape == target else value.reshape(target)


def _loop(prim, node: Node, args: list[Any], flags: list[bool]) -> np.ndarray:
    """The batch rule of last resort: the primitive once per batch item."""
    size = max(np.shape(a)[0] for a, batched in zip(args, flags, strict=True) if batched)
    results = []
    for k in range(size):
        item = [
            (a[k] if np.shape(a)[0] > 1 else a[0]) if batched else a
            for a, batched in zip(args, flags, strict=True)
        ]
        results.append(np.asarray(prim.forward(*item, *node.attrs)))
    return np.stack(results)


def _constant(value: Any, make: type[np.generic]) -> Any:
    if isinstance(value, np.ndarray):
        return value.astype(make)
    return make(value)


def _cast(value: Any, make: type[np.generic]) -> Any:
    """`value` in the working precision; complex stays complex (for the complex step)."""
    if np.iscomplexobj(value):
        make = np.result_type(make, np.complex64).type
    array = np.asarray(value, dtype=make)
    return make(array) if array.ndim == 0 else array


def _empty(value: Any) -> bool:
    """An empty result can swallow a nan of its inputs (broadcast against a 0-length axis):
    the scan limited to watched nodes would miss it, so the evaluation checks every node."""
    return type(value) is np.ndarray and value.size == 0


def _finite(value: Any) -> bool:
    if type(value) in (float, np.float64, np.float32):
        return math.isfinite(value)
    array = np.asarray(value)
    # The sum is nan or inf if any element is, and takes one pass with no boolean array; only a
    # sum that overflows needs the element-wise look.
    if (
        array.size > 4096
        and array.dtype.kind in "fc"
        and np.isfinite(np.add.reduce(array, axis=None))
    ):
        return True
    return bool(np.isfinite(array).all())


def _fault(node: Node, value: Any, args: list[Any]) -> Fault:
    value = np.asarray(value)
    index = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0]) if value.ndim else None
    first = value[index] if index is not None else value[()]
    kind = "nan" if np.isnan(first) else ("inf" if np.real(first) > 0 else "-inf")
    if node.op != "variable" and REGISTRY[node.op].partials is None:
        # Not elementwise (a sum, a matrix product): no input element matches the output's, but
        # a domain may say why (inv of a singular matrix).
        domain = REGISTRY[node.op].domain
        if domain is not None and not np.all(domain.contains(*args)):
            return Fault(node, kind, "domain", index, ())
        return Fault(node, kind, "undefined" if kind == "nan" else "overflow", index, ())
    at = tuple(
        np.broadcast_to(a, value.shape)[index] if index is not None else np.asarray(a)[()]
        for a in args
    )
    if node.op == "variable":
        cause = "input"
    else:
        domain = REGISTRY[node.op].domain
        if domain is not None and not np.all(domain.contains(*at)):
            cause = "domain"
        else:
            cause = "undefined" if kind == "nan" else "overflow"
    return Fault(node, kind, cause, index, at)
