"""Registrations of the array primitives: reductions, products, indexing and shape plumbing.

Unlike the elementwise primitives, each of these states its output shape, its vector-Jacobian
product (written with graph operations, with the static shapes of its inputs at hand) and its batch
rule (the same operation with a leading batch axis, which shifts every axis it names).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from functools import reduce
from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import REGISTRY, Operator, Primitive, as_shape, register

Shape = tuple[int, ...]
ShapeOf = Callable[[Node], Shape]


def _apply(name: str, *args: Node | float, attrs: tuple = ()) -> Node:
    graph = next(a for a in args if isinstance(a, Node)).graph
    return graph.apply(name, *args, attrs=attrs)


# --- axes and shapes ------------------------------------------------------------------------


def _axis(axis: int | None, ndim: int) -> int | None:
    """`axis` checked against `ndim` and made non-negative (None: every axis)."""
    if axis is None:
        return None
    if not isinstance(axis, int):
        raise ValueError(f"axis must be one whole number, not {list(axis)}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for an array with {ndim} axes")
    return axis % ndim


def _reduced(shape: Shape, axis: int | None) -> Shape:
    axis = _axis(axis, len(shape))
    return () if axis is None else shape[:axis] + shape[axis + 1 :]


def _same_shape(shape: Shape, axis: int | None) -> Shape:
    _axis(axis, len(shape))  # only to check it
    return shape


def _kept(shape: Shape, axis: int | None) -> Shape:
    """`shape` with the reduced axis (or every axis) kept as length 1."""
    axis = _axis(axis, len(shape))
    if axis is None:
        return (1,) * len(shape)
    return (*shape[:axis], 1, *shape[axis + 1 :])


def _in_batch(axis: int | None, ndim: int) -> int | tuple[int, ...]:
    """The axis of an item, in a value with a leading batch axis."""
    axis = _axis(axis, ndim)
    return tuple(range(1, ndim + 1)) if axis is None else axis + 1


def _same_on_tangent(name: str) -> Callable[..., Node]:
    """The jvp of a linear primitive: the primitive itself, applied to the tangent."""
    return lambda node, ts, shape_of: _apply(name, ts[0], attrs=node.attrs)


def _expand(g: Node, shape: Shape, axis: int | None) -> Node:
    """A reduced adjoint spread back over the reduced axis: the vjp of every reduction."""
    g = _apply("reshape", g, attrs=(_kept(shape, axis),))
    return _apply("broadcast_to", g, attrs=(shape,))


def _reduction(
    name: str,
    forward: Callable[..., Any],
    doc: str,
    vjp: Callable[[Node, Node, ShapeOf], tuple],
    *,
    analytic: bool = True,
    kink: Callable[..., Any] | None = None,
    public: bool = True,
    written_as: str | None = None,
    magnitude_vjp: Callable[..., Any] | None = None,
    jvp: Callable[..., Any] | None = None,
    passes_nonfinite: tuple[int, ...] = (),
    **forms: Any,  # latex, python, python_uses
) -> Primitive:
    """A primitive that reduces one array along an optional `axis`."""

    def batch(args, flags, items, out, axis):
        return forward(args[0], _in_batch(axis, len(items[0])))

    return register(
        Primitive(
            name, 1, lambda x, axis: forward(x, _axis(axis, np.ndim(x))), doc,
            vjp=vjp, shape=_reduced, batch=batch, analytic=analytic, kink=kink,
            attr_params=(("axis", None),), public=public, written_as=written_as,
            magnitude_vjp=magnitude_vjp, jvp=jvp or _same_on_tangent(name),
            passes_nonfinite=passes_nonfinite, **forms,
        )
    )  # fmt: skip


# --- sum, mean, prod ------------------------------------------------------------------------

_reduction(
    "sum",
    lambda x, axis: np.sum(x, axis=axis),
    "sum of the elements (along axis, if given)",
    lambda node, g, shape_of: (_expand(g, shape_of(node.inputs[0]), node.attrs[0]),),
    passes_nonfinite=(0,),
)


def _mean_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    shape = shape_of(node.inputs[0])
    count = math.prod(shape) // max(1, math.prod(_reduced(shape, node.attrs[0])))
    return (_expand(g / count, shape, node.attrs[0]),)


_reduction("mean", lambda x, axis: np.mean(x, axis=axis), "mean of the elements", _mean_vjp)


def _exclusive_product(x: np.ndarray, axis: int | tuple[int, ...] | None) -> np.ndarray:
    """For each element, the product of all the others along `axis`: no division, so zeros
    are fine."""
    x = np.asarray(x)
    if axis is None or isinstance(axis, tuple):
        lead = 0 if axis is None else 1
        flat = x.reshape((*x.shape[:lead], -1))
        return _exclusive_product(flat, lead).reshape(x.shape)
    if x.shape[axis] == 0:
        return x.copy()
    ones = np.ones_like(np.take(x, [0], axis=axis))
    left = np.cumprod(np.concatenate([ones, x], axis=axis), axis=axis)
    right = np.flip(
        np.cumprod(np.concatenate([ones, np.flip(x, axis=axis)], axis=axis), axis=axis),
        axis=axis,
    )
    n = x.shape[axis]
    return np.take(left, range(n), axis=axis) * np.take(right, range(1, n + 1), axis=axis)


def _pair_products(x: np.ndarray, *ts: np.ndarray, axis: Any = None) -> np.ndarray:
    """For each j along `axis`: the sum, over every way to give each tangent t_m its own
    position p ≠ j, of the product of t_m[p] at those positions and x elsewhere (j left out).

    With no tangent this is the exclusive product Π_{k≠j} x_k (∂prod/∂x_j); with t it is
    Σ_{i≠j} t_i Π_{k∉{i,j}} x_k, the second derivative of prod applied to t; each further tangent
    is one more derivative. A left-to-right and a right-to-left recurrence over the subsets of
    tangents placed so far, so no division (zeros are exact) and O(n·3^k) work.
    """
    x, *ts = np.broadcast_arrays(np.asarray(x), *(np.asarray(t) for t in ts))
    if axis is None or isinstance(axis, tuple):
        lead = 0 if axis is None else 1
        shape = (*x.shape[:lead], -1)
        flat = [a.reshape(shape) for a in (x, *ts)]
        return _pair_products(*flat, axis=lead).reshape(x.shape)
    x = np.moveaxis(x, axis, -1)
    ts = [np.moveaxis(t, axis, -1) for t in ts]
    n, k = x.shape[-1], len(ts)
    subsets = 1 << k
    dtype = np.result_type(x, *ts, np.float64)
    left = np.zeros((n, subsets, *x.shape[:-1]), dtype=dtype)  # positions before j
    right = np.zeros_like(left)  # positions after j
    state = np.zeros((subsets, *x.shape[:-1]), dtype=dtype)
    state[0] = 1.0
    for p in range(n):
        left[p] = state
        state = _place(state, x[..., p], [t[..., p] for t in ts])
    state = np.zeros_like(state)
    state[0] = 1.0
    for p in range(n - 1, -1, -1):
        right[p] = state
        state = _place(state, x[..., p], [t[..., p] for t in ts])
    out = sum(left[:, s] * right[:, (subsets - 1) ^ s] for s in range(subsets))
    return np.moveaxis(np.moveaxis(np.asarray(out), 0, -1), -1, axis)


def _prod_pairs(x, *ts, axis=None):
    return _pair_products(x, *ts, axis=axis)


def _place(state: np.ndarray, x: np.ndarray, ts: list[np.ndarray]) -> np.ndarray:
    """One more position: it holds x, or the tangent m not yet placed (subset bit m)."""
    out = state * x
    for s in range(1, len(state)):
        for m in range(len(ts)):
            if s >> m & 1:
                out[s] = out[s] + state[s ^ (1 << m)] * ts[m]
    return out


# --- complex products -----------------------------------------------------------------------

_NO_EXPONENT = -(1 << 40)  # the binary exponent of a zero part


def _pack(re: Any, im: Any) -> np.ndarray:
    """re + i·im, without the nan that re + 1j*im makes of an infinite im."""
    re, im = np.asarray(re), np.asarray(im)
    out = np.empty(np.broadcast_shapes(re.shape, im.shape), np.result_type(re, im, np.complex64))
    out.real, out.imag = re, im
    return out


def _mantissas(v: Any, e: Any = 0) -> tuple[np.ndarray, np.ndarray]:
    """v·2^e as a mantissa in [0.5, 1) (or 0) and a binary exponent (_NO_EXPONENT for 0)."""
    m, k = np.frexp(v)
    return m, np.where(m == 0, _NO_EXPONENT, np.add(e, k, dtype=np.int64))


def _add_scaled(p: Any, ep: Any, q: Any, eq: Any) -> tuple[np.ndarray, np.ndarray]:
    top = np.maximum(ep, eq)
    return _mantissas(np.ldexp(p, ep - top) + np.ldexp(q, eq - top), top)


class _Wide:
    """Complex numbers whose real and imaginary parts keep their own binary exponents:
    rm·2^re + i·im·2^ie, with mantissas in [0.5, 1).

    A product of factors with tiny imaginary parts loses its imaginary part to underflow long
    before the product itself underflows: in (1e-200 + 2^-1022 i)·1e-100·1e250 the first partial
    product's is 2^-1022·1e-100, while the result's is 2^-1022·1e150. In this form no partial
    result overflows or underflows, and each part is rounded to a float once, at the end."""

    def __init__(self, rm: Any, re: Any, im: Any, ie: Any) -> None:
        self.parts = (rm, re, im, ie)

    @classmethod
    def of(cls, z: Any) -> _Wide:
        z = np.asarray(z)
        return cls(*_mantissas(np.real(z)), *_mantissas(np.imag(z)))

    def __mul__(self, other: _Wide) -> _Wide:
        (ar, ae, ai, af), (br, be, bi, bf) = self.parts, other.parts
        return _Wide(
            *_add_scaled(ar * br, ae + be, -(ai * bi), af + bf),
            *_add_scaled(ar * bi, ae + bf, ai * br, af + be),
        )

    def __add__(self, other: _Wide) -> _Wide:
        (ar, ae, ai, af), (br, be, bi, bf) = self.parts, other.parts
        return _Wide(*_add_scaled(ar, ae, br, be), *_add_scaled(ai, af, bi, bf))

    def __getitem__(self, key: Any) -> _Wide:
        return _Wide(*(p[key] for p in self.parts))

    def __len__(self) -> int:
        return len(self.parts[0])

    def join(self, other: _Wide) -> _Wide:
        """Both, one after the other along the first axis."""
        return _Wide(
            *(np.concatenate([a, b]) for a, b in zip(self.parts, other.parts, strict=True))
        )

    def value(self) -> np.ndarray:
        rm, re, im, ie = self.parts
        return _pack(np.ldexp(rm, re), np.ldexp(im, ie))


def _flat_axis(x: np.ndarray, axis: Any) -> tuple[np.ndarray, int]:
    """For axis None (every axis) or a tuple (every axis after a batch axis): x with those axes
    made one, and that axis."""
    if axis is None or isinstance(axis, tuple):
        lead = 0 if axis is None else 1
        return x.reshape((*x.shape[:lead], -1)), lead
    return x, axis


def _wide_prod(x: Any, axis: Any) -> np.ndarray:
    """The complex product along `axis`, as a tree of _Wide products."""
    x, axis = _flat_axis(np.asarray(x), axis)
    z = np.moveaxis(x, axis, 0)
    size = 1 << max(0, (len(z) - 1).bit_length())  # a power of two, padded with ones
    w = _Wide.of(np.concatenate([z, np.ones((size - len(z), *z.shape[1:]), z.dtype)]))
    while len(w) > 1:
        w = w[0::2] * w[1::2]
    return w[0].value()


def _wide_scan(w: _Wide) -> _Wide:
    """Products of the first 1, 2, …, n elements (along the first axis), in log2(n) steps."""
    shift = 1
    while shift < len(w):
        w = w[:shift].join(w[shift:] * w[:-shift])
        shift *= 2
    return w


def _wide_exclusive(x: Any, axis: Any) -> np.ndarray:
    """_exclusive_product for complex x: the left and right products in _Wide form."""
    x = np.asarray(x)
    flat, lead = _flat_axis(x, axis)
    if flat.shape[lead] == 0:
        return x.copy()
    z = np.moveaxis(flat, lead, 0)
    ones = np.ones_like(z[:1])
    left = _wide_scan(_Wide.of(np.concatenate([ones, z[:-1]])))
    right = _wide_scan(_Wide.of(np.concatenate([ones, z[:0:-1]])))[::-1]
    return np.moveaxis((left * right).value(), 0, lead).reshape(x.shape)


def _wide_pair_products(x: Any, *ts: Any, axis: Any = None) -> np.ndarray:
    """_pair_products for complex inputs: the same recurrences, in _Wide form."""
    x, *ts = np.broadcast_arrays(np.asarray(x), *(np.asarray(t) for t in ts))
    shape = x.shape
    flat = [_flat_axis(a, axis) for a in (x, *ts)]
    axis = flat[0][1]
    x, *ts = (np.moveaxis(a, axis, -1) for a, _ in flat)
    n, k = x.shape[-1], len(ts)
    if n == 0:
        return np.zeros(shape, np.result_type(x, *ts, np.complex64))
    subsets = 1 << k
    real = np.result_type(*(np.real(a) for a in (x, *ts)))
    zero, one = _Wide.of(np.zeros(x.shape[:-1], real)), _Wide.of(np.ones(x.shape[:-1], real))

    def walk(order: range) -> dict[int, list[_Wide]]:
        """The state before each position: subset s of the tangents placed (see _place)."""
        state, before = [one] + [zero] * (subsets - 1), {}
        for p in order:
            before[p] = state
            xp, tp = _Wide.of(x[..., p]), [_Wide.of(t[..., p]) for t in ts]
            new = [s * xp for s in state]
            for s in range(1, subsets):
                for m in range(k):
                    if s >> m & 1:
                        new[s] = new[s] + state[s ^ (1 << m)] * tp[m]
            state = new
        return before

    left, right = walk(range(n)), walk(range(n - 1, -1, -1))
    out = []
    for p in range(n):
        total = left[p][0] * right[p][subsets - 1]
        for s in range(1, subsets):
            total = total + left[p][s] * right[p][(subsets - 1) ^ s]
        out.append(total.value())
    return np.moveaxis(np.moveaxis(np.stack(out), 0, -1), -1, axis).reshape(shape)


def _any_complex(*xs: Any) -> bool:
    return any(np.iscomplexobj(x) for x in xs)


def _prod(x: Any, axis: Any) -> Any:
    return _wide_prod(x, axis) if np.iscomplexobj(x) else np.prod(x, axis=axis)


def _exclusive(x: Any, axis: Any) -> Any:
    return _wide_exclusive(x, axis) if np.iscomplexobj(x) else _exclusive_product(x, axis)


def _pairs_of(x: Any, *ts: Any, axis: Any = None) -> Any:
    if _any_complex(x, *ts):
        return _wide_pair_products(x, *ts, axis=axis)
    return _pair_products(x, *ts, axis=axis)


def _pairs_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    """The k-th derivative of prod_except, as a multilinear map of x's tangents, is symmetric:
    its vjp in x adds g as one more tangent, and in t_m puts g in t_m's place."""
    x, *ts = node.inputs
    return _summed_to_inputs(
        node,
        shape_of,
        _pairs(x, [*ts, g], node.attrs),
        *(_pairs(x, [*ts[:m], g, *ts[m + 1 :]], node.attrs) for m in range(len(ts))),
    )


def _pairs_magnitude(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    x, *ts = (_apply("abs", i) for i in node.inputs)
    return _summed_to_inputs(
        node,
        shape_of,
        _pairs(x, [*ts, g], node.attrs),
        *(_pairs(x, [*ts[:m], g, *ts[m + 1 :]], node.attrs) for m in range(len(ts))),
    )


def _summed_to_inputs(node: Node, shape_of: ShapeOf, *parts: Node) -> tuple:
    """The inputs of prod_pairs broadcast together: each adjoint summed back to its input."""
    return tuple(
        part if shape_of(x) == shape_of(node) else _apply("sum_to", part, attrs=(shape_of(x),))
        for x, part in zip(node.inputs, parts, strict=True)
    )


def _pairs_jvp(node: Node, tangents: list, shape_of: ShapeOf) -> Node | None:
    x, *ts = node.inputs
    dx, *dts = tangents
    terms = [] if dx is None else [_pairs(x, [*ts, dx], node.attrs)]
    terms += [
        _pairs(x, [*ts[:m], dt, *ts[m + 1 :]], node.attrs)
        for m, dt in enumerate(dts)
        if dt is not None
    ]
    return None if not terms else reduce(operator.add, terms)


def _pairs_batched(args, flags, items, out, axis):
    arrays = [a if batched else np.asarray(a)[None] for a, batched in zip(args, flags, strict=True)]
    return _pairs_of(*arrays, axis=_in_batch(axis, max(len(i) for i in items)))


def _pairs_lower(call: Any) -> Node:
    """prod_pairs(x, t1, …, tk, axis=…): every positional argument is an input."""
    if not call.args:
        raise call.error("prod_pairs takes x and any number of tangents", hint="prod_pairs(x, t)")
    return call.apply(REGISTRY["prod_pairs"], list(call.args))


register(Primitive(
    "prod_pairs", 2,
    lambda x, *rest: _pairs_of(x, *rest[:-1], axis=_axis(rest[-1], np.ndim(x))),
    "the k-th derivative of prod_except applied to t1, …, tk, along axis (with one tangent: "
    "Σ_{i≠j} t_i Π_{k∉{i,j}} x_k)",
    vjp=_pairs_vjp, magnitude_vjp=_pairs_magnitude, jvp=_pairs_jvp, analytic=True,
    params=("x", "t"), lower=_pairs_lower,
    shape=lambda *a: _same_shape(np.broadcast_shapes(*a[:-1]), a[-1]),
    batch=_pairs_batched, attr_params=(("axis", None),),
    python="_prod_pairs(@inputs, axis=@axis)", python_uses=(_place, _pair_products, _prod_pairs),
))  # fmt: skip


def _pairs(x: Node, ts: list[Node], attrs: tuple) -> Node:
    return _apply("prod_pairs", x, *ts, attrs=attrs)


register(Primitive(
    "prod_except", 1, lambda x, axis: _exclusive(x, _axis(axis, np.ndim(x))),
    "the product of the other elements along axis (the derivative of prod)",
    vjp=lambda node, g, shape_of: (_pairs(node.inputs[0], [g], node.attrs),),
    magnitude_vjp=lambda node, g, shape_of: (
        _pairs(_apply("abs", node.inputs[0]), [g], node.attrs),
    ),
    jvp=lambda node, ts, shape_of: _pairs(node.inputs[0], [ts[0]], node.attrs),
    shape=_same_shape, analytic=True,  # products: polynomials
    batch=lambda args, flags, items, out, axis: _exclusive(args[0], _in_batch(axis, len(items[0]))),
    attr_params=(("axis", None),),
    python="_exclusive_product(@0, @axis)", python_uses=(_exclusive_product,),
))  # fmt: skip

_reduction(
    "prod",
    _prod,
    "product of the elements",
    lambda node, g, shape_of: (
        _expand(g, shape_of(node.inputs[0]), node.attrs[0])
        * _apply("prod_except", node.inputs[0], attrs=node.attrs),
    ),
    magnitude_vjp=lambda node, g, shape_of: (
        _expand(g, shape_of(node.inputs[0]), node.attrs[0])
        * _apply("abs", _apply("prod_except", node.inputs[0], attrs=node.attrs)),
    ),
    jvp=lambda node, ts, shape_of: _apply(
        "sum", ts[0] * _apply("prod_except", node.inputs[0], attrs=node.attrs), attrs=node.attrs
    ),
)


# --- max and min over an array ------------------------------------------------------------


def _top_gap(x: np.ndarray, axis: int | tuple[int, ...] | None, sign: float) -> np.ndarray:
    """The gap between the largest two elements (smallest two, for sign -1): 0 on a tie."""
    x = sign * np.real(np.asarray(x))
    if axis is None or isinstance(axis, tuple):
        lead = 0 if axis is None else 1
        x, axis = x.reshape((*x.shape[:lead], -1)), lead
    if x.shape[axis] < 2:
        return np.full(np.delete(np.array(x.shape), axis), np.inf)
    top = -np.partition(-x, 1, axis=axis)
    return np.take(top, 0, axis=axis) - np.take(top, 1, axis=axis)


def _top_pair(x: np.ndarray, axis: int | tuple[int, ...] | None, sign: float) -> np.ndarray:
    """The gradient of `_top_gap` on the piece where the first of the top two elements (in
    index order, on a tie) leads: +sign there, -sign at the second, 0 elsewhere."""
    x = sign * np.real(np.asarray(x, dtype=complex if np.iscomplexobj(x) else float))
    shape = x.shape
    if axis is None or isinstance(axis, tuple):
        lead = 0 if axis is None else 1
        x, axis = x.reshape((*x.shape[:lead], -1)), lead
    weights = np.zeros(x.shape)
    if x.shape[axis] >= 2:
        order = np.argsort(-x, axis=axis, kind="stable")
        np.put_along_axis(weights, np.take(order, [0], axis=axis), sign, axis=axis)
        np.put_along_axis(weights, np.take(order, [1], axis=axis), -sign, axis=axis)
    return weights.reshape(shape)


for _name, _sign in (("max", 1.0), ("min", -1.0)):
    register(Primitive(
        f"top_pair_{_name}", 1,
        lambda x, axis, s=_sign: _top_pair(x, _axis(axis, np.ndim(x)), s),
        "±1 at the two elements whose gap is top_gap (its gradient, piecewise constant)",
        vjp=lambda node, g, shape_of: (None,), jvp=lambda node, ts, shape_of: None,
        shape=_same_shape, public=False,
        batch=lambda args, flags, items, out, axis, s=_sign: _top_pair(
            args[0], _in_batch(axis, len(items[0])), s
        ),
        attr_params=(("axis", None),),
    ))  # fmt: skip
    # At a tie the gap is a cone, |a_i - a_j|: its jvp, the slope on one side, is the normal of
    # the kink that the subgradient checks need and that differences cannot give.
    register(Primitive(
        f"top_gap_{_name}", 1,
        lambda x, axis, s=_sign: _top_gap(x, _axis(axis, np.ndim(x)), s),
        f"the gap between the two {'largest' if _sign > 0 else 'smallest'} elements",
        vjp=lambda node, g, shape_of: (None,),
        jvp=lambda node, ts, shape_of, n=_name: _apply(
            "sum", ts[0] * _apply(f"top_pair_{n}", node.inputs[0], attrs=node.attrs),
            attrs=node.attrs,
        ),
        shape=_reduced, public=False,
        batch=lambda args, flags, items, out, axis, s=_sign: _top_gap(
            args[0], _in_batch(axis, len(items[0])), s
        ),
        attr_params=(("axis", None),),
    ))  # fmt: skip


def _extreme_weights(node: Node, shape_of: ShapeOf) -> Node:
    """1/(number of ties) at the extreme elements, 0 elsewhere."""
    (x,), axis = node.inputs, node.attrs[0]
    shape = shape_of(x)
    hit = _apply("equal", x, _expand(node, shape, axis))
    return hit / _expand(_apply("sum", hit, attrs=(axis,)), shape, axis)


def _extreme_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    """The adjoint goes to the extreme element, split evenly between tied ones."""
    (x,), axis = node.inputs, node.attrs[0]
    return (_expand(g, shape_of(x), axis) * _extreme_weights(node, shape_of),)


def _extreme(x: Any, axis: int | tuple[int, ...] | None, largest: bool) -> Any:
    """max or min along `axis`; for the complex step, the element whose real part is the
    extreme one, as the real function chooses it (analytic off the ties)."""
    if not np.iscomplexobj(x):
        return np.max(x, axis=axis) if largest else np.min(x, axis=axis)
    x = np.asarray(x)
    axes = tuple(range(x.ndim)) if axis is None else (axis if isinstance(axis, tuple) else (axis,))
    kept = [i for i in range(x.ndim) if i not in axes]
    flat = np.transpose(x, (*kept, *axes)).reshape(*(x.shape[i] for i in kept), -1)
    pick = (np.argmax if largest else np.argmin)(np.real(flat), axis=-1)
    return np.take_along_axis(flat, pick[..., None], axis=-1)[..., 0]


for _name, _numpy in (("max", np.max), ("min", np.min)):
    _reduction(
        f"a{_name}",
        lambda x, axis, big=_name == "max": _extreme(x, axis, big),
        f"the {'largest' if _name == 'max' else 'smallest'} element (derivative split on ties)",
        _extreme_vjp,
        analytic=True,  # off the ties (see _extreme); on them, differences take over
        kink=lambda x, axis, n=_name: _apply(f"top_gap_{n}", x, attrs=(axis,)),
        public=False,
        written_as=_name,
        jvp=lambda node, ts, shape_of: _apply(
            "sum", ts[0] * _extreme_weights(node, shape_of), attrs=node.attrs
        ),
        python=f"np.{_name}(@0, axis=@axis)",
        latex=rf"\{_name}\left(@0\right)",
    )

register(Primitive(
    "equal", 2, lambda a, b: (np.real(a) == np.real(b)).astype(float),
    "1 where a = b, else 0 (appears in derivatives: ties, division by a norm of 0)",
    partials=(lambda ans, a, b: None, lambda ans, a, b: None), params=("a", "b"),
    kink=lambda a, b: a - b, analytic=True, jump=True,  # a step function, as sign is
    latex=r"\left[@0 = @1\right]", python="np.equal(@0, @1).astype(float)",
))  # fmt: skip


# --- norm, logsumexp, softmax ---------------------------------------------------------------


def _norm(x: np.ndarray, axis: Any) -> np.ndarray:
    """The 2-norm, scaled by the largest element so that squares cannot overflow or underflow."""
    x = np.asarray(x)
    scale = np.max(np.abs(x), axis=axis, keepdims=True)
    safe = np.where(scale > 0, scale, 1.0)
    return np.squeeze(safe, axis=axis) * np.sqrt(np.sum((x / safe) ** 2, axis=axis))


def _norm_complex(x: np.ndarray, axis: Any) -> np.ndarray:
    """sqrt(Σ z²) for the complex step (the first-order ‖x‖ + iΣ(x/‖x‖)·x' it replaces was off
    where the step is not tiny next to x: 2^-1000 at 1e-300). Scaled by a power of two near the
    largest part; the imaginary part, Σ xr·xi/Re, is formed from the unscaled xi, which scaled
    would underflow (2^-1022 next to 1e150)."""
    xr, xi = np.real(x), np.imag(x)
    top = np.max(np.maximum(np.abs(xr), np.abs(xi)), axis=axis, keepdims=True)
    s = np.ldexp(np.ones_like(top), np.frexp(np.where(top > 0, top, 1.0))[1] - 1)
    ur, ui = xr / s, xi / s
    q = np.sum(ur * xi, axis=axis, keepdims=True)  # s·Im(Σ u²)/2
    squares = np.sum(ur * ur, axis=axis, keepdims=True) - np.sum(ui * ui, axis=axis, keepdims=True)
    root = np.sqrt(_pack(squares, 2 * q / s))
    positive = root.real > 0
    im = np.where(positive, q / np.where(positive, root.real, 1.0), s * root.imag)
    return np.squeeze(_pack(s * root.real, im), axis=axis)


def _norm_any(x: np.ndarray, axis: Any) -> np.ndarray:
    return _norm_complex(x, axis) if np.iscomplexobj(x) else _norm(x, axis)


def _norm_vjp(node: Node, g: Node, shape_of: ShapeOf, size=lambda v: v) -> tuple:
    """g·x/‖x‖, and 0 (a valid subgradient) where ‖x‖ = 0, as abs'(0) = 0."""
    (x,), axis = node.inputs, node.attrs[0]
    safe = node + _apply("equal", node, 0.0)
    return (size(x) * _expand(g, shape_of(x), axis) / _expand(safe, shape_of(x), axis),)


_reduction(
    "norm",
    _norm_any,
    "Euclidean norm sqrt(sum(x^2)), without overflow (derivative 0 at 0)",
    _norm_vjp,
    kink=lambda x, axis: _apply("norm", x, attrs=(axis,)),
    magnitude_vjp=lambda node, g, shape_of: _norm_vjp(
        node, g, shape_of, lambda v: _apply("abs", v)
    ),
    jvp=lambda node, ts, shape_of: (
        _apply("sum", node.inputs[0] * ts[0], attrs=node.attrs)
        / (node + _apply("equal", node, 0.0))
    ),
    latex=r"\left\lVert @0\right\rVert",
    python="_norm(@0, @axis)",
    python_uses=(_norm,),
)


def _logsumexp(x: np.ndarray, axis: Any) -> np.ndarray:
    x = np.asarray(x)
    top = np.max(np.real(x), axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    total = np.sum(np.exp(x - top), axis=axis, keepdims=True)
    return np.squeeze(top + np.log(total), axis=axis)


_reduction(
    "logsumexp",
    _logsumexp,
    "log(sum(exp(x))), without overflow",
    # softmax, computed from x - max(x), rather than exp(x - logsumexp(x)): the latter carries
    # the rounding of a large logsumexp into every term.
    lambda node, g, shape_of: (
        _expand(g, shape_of(node.inputs[0]), node.attrs[0])
        * _softmax_of(node.inputs[0], node.attrs[0], shape_of(node.inputs[0])),
    ),
    jvp=lambda node, ts, shape_of: _apply(
        "sum",
        ts[0] * _softmax_of(node.inputs[0], node.attrs[0], shape_of(node.inputs[0])),
        attrs=node.attrs,
    ),
    python="_logsumexp(@0, @axis)",
    python_uses=(_logsumexp,),
)


def _softmax(x: np.ndarray, axis: Any) -> np.ndarray:
    x = np.asarray(x)
    top = np.max(np.real(x), axis=axis, keepdims=True)
    e = np.exp(x - np.where(np.isfinite(top), top, 0.0))
    return e / np.sum(e, axis=axis, keepdims=True)


def _softmax_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    shape, axis = shape_of(node), node.attrs[0]
    inner = _expand(_apply("sum", g * node, attrs=(axis,)), shape, axis)
    return (node * (g - inner),)


def _softmax_jvp(node: Node, ts: list, shape_of: ShapeOf) -> Node:
    shape, axis = shape_of(node), node.attrs[0]
    return node * (ts[0] - _expand(_apply("sum", node * ts[0], attrs=(axis,)), shape, axis))


def _softmax_magnitude(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    """|J|ᵀ g ≤ s·g + s·Σ g s for J = diag(s) - s sᵀ: what the vjp's cancellation costs."""
    shape, axis = shape_of(node), node.attrs[0]
    inner = _expand(_apply("sum", g * node, attrs=(axis,)), shape, axis)
    return (node * (g + inner),)


def _softmax_of(x: Node, axis: int | None, shape: Shape) -> Node:
    """softmax along `axis`, or over every element for axis None."""
    if axis is not None:
        return _apply("softmax", x, attrs=(axis,))
    flat = _apply("reshape", x, attrs=((math.prod(shape),),))
    return _apply("reshape", _apply("softmax", flat, attrs=(-1,)), attrs=(shape,))


register(Primitive(
    "softmax", 1, lambda x, axis: _softmax(x, _axis(axis, np.ndim(x))),
    "exp(x)/sum(exp(x)) along axis (the last, by default)",
    vjp=_softmax_vjp, magnitude_vjp=_softmax_magnitude, jvp=_softmax_jvp,
    shape=lambda s, axis: _same_shape(s, axis), analytic=True,
    batch=lambda args, flags, items, out, axis: _softmax(args[0], _in_batch(axis, len(items[0]))),
    attr_params=(("axis", -1),),
    python="_softmax(@0, @axis)", python_uses=(_softmax,),
))  # fmt: skip


# --- shapes: transpose, reshape, broadcast, stack, index --------------------------------------


def _permutation(axes: Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    if axes is None:
        return tuple(reversed(range(ndim)))
    if isinstance(axes, int):
        raise ValueError(f"axes is a list of {ndim} whole numbers, as in axes=[1, 0]")
    perm = tuple(_axis(a, ndim) for a in axes)
    if sorted(perm) != list(range(ndim)):
        raise ValueError(f"axes {tuple(axes)} are not a permutation of {ndim} axes")
    return perm


def _transpose_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    perm = _permutation(node.attrs[0], len(shape_of(node.inputs[0])))
    inverse = tuple(int(i) for i in np.argsort(perm))
    return (_apply("transpose", g, attrs=(inverse,)),)


register(Primitive(
    "transpose", 1, lambda x, axes: np.transpose(x, _permutation(axes, np.ndim(x))),
    "the axes reversed (or permuted as axes says)",
    vjp=_transpose_vjp, jvp=_same_on_tangent("transpose"), analytic=True,
    attr_params=(("axes", None),), passes_nonfinite=(0,),
    shape=lambda s, axes: tuple(s[i] for i in _permutation(axes, len(s))),
    batch=lambda args, flags, items, out, axes: np.transpose(
        args[0], (0, *(1 + i for i in _permutation(axes, len(items[0]))))
    ),
))  # fmt: skip


def _reshape_shape(s: Shape, shape: Shape | int) -> Shape:
    shape = as_shape(shape)
    if math.prod(s) != math.prod(shape):
        raise ValueError(f"cannot reshape {s} into {shape}")
    return shape


register(Primitive(
    "reshape", 1, lambda x, shape: np.reshape(x, as_shape(shape)),
    "the same elements in another shape: reshape(x, shape=[2, 3])",
    vjp=lambda node, g, shape_of: (_apply("reshape", g, attrs=(shape_of(node.inputs[0]),)),),
    jvp=_same_on_tangent("reshape"), shape=_reshape_shape, analytic=True, passes_nonfinite=(0,),
    batch=lambda args, flags, items, out, shape: np.reshape(
        args[0], np.shape(args[0])[:1] + as_shape(shape)
    ),
    attr_params=(("shape", ()),),
    python="np.reshape(@0, @shape)",
))  # fmt: skip


def _stack_shape(*shapes: Shape) -> Shape:
    return (len(shapes), *np.broadcast_shapes(*shapes))


def _stack_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    out = []
    for i, x in enumerate(node.inputs):
        part = _apply("index", g, attrs=((i,),))
        if shape_of(x) != shape_of(node)[1:]:
            part = _apply("sum_to", part, attrs=(shape_of(x),))
        out.append(part)
    return tuple(out)


def _stack_jvp(node: Node, ts: list, shape_of: ShapeOf) -> Node:
    """Stack the tangents, each spread to the shape of an element (zeros for constants)."""
    item = shape_of(node)[1:]
    parts = [
        node.graph.apply("broadcast_to", node.graph.const(0.0) if t is None else t, attrs=(item,))
        for t in ts
    ]
    return node.graph.apply("stack", *parts)


def _stack_batched(args, flags, items, out):
    size = max(np.shape(a)[0] for a, batched in zip(args, flags, strict=True) if batched)
    item = tuple(out[1:])
    parts = []
    for a, batched, shape in zip(args, flags, items, strict=True):
        a = np.asarray(a)
        if batched:
            a = a.reshape(a.shape[:1] + (1,) * (len(item) - len(shape)) + tuple(shape))
        parts.append(np.broadcast_to(a, (size, *item)))
    return np.stack(parts, axis=1)


register(Primitive(
    "stack", 1, lambda *xs: np.stack(np.broadcast_arrays(*xs)),
    "the arguments as the rows of an array (what [a, b, c] means)",
    vjp=_stack_vjp, jvp=_stack_jvp, shape=_stack_shape, batch=_stack_batched, analytic=True,
    variadic=True,
    public=False,
))  # fmt: skip


def _key(key: tuple) -> tuple:
    """An index as numpy takes it: slices are stored as ("slice", start, stop, step) tuples,
    which, unlike slice objects, can be hashed."""
    return tuple(slice(*k[1:]) if isinstance(k, tuple) else k for k in key)


def _index_shape(s: Shape, key: tuple) -> Shape:
    try:
        return np.broadcast_to(0.0, s)[_key(key)].shape
    except IndexError as exc:
        raise ValueError(f"the index is out of range for shape {s}: {exc}") from None


def _unindex(g: Any, shape: Shape, start, stop, step, batched: bool = False) -> np.ndarray:
    g = np.asarray(g)
    lead = g.shape[:1] if batched else ()
    out = np.zeros(lead + as_shape(shape), dtype=np.result_type(g, np.float64))
    out[((slice(None),) if batched else ()) + _ranges_key(start, stop, step)] = g
    return out


def _ranges(key: tuple, shape: Shape) -> tuple[Shape, Shape, Shape]:
    """An index as three whole-number lists a program can write, one entry per axis: start,
    stop and step of a slice (normalized, so -1 and None are gone), step 0 for a single index."""
    start, stop, step = [], [], []
    for axis, n in enumerate(shape):
        part = key[axis] if axis < len(key) else ("slice", None, None, None)
        if isinstance(part, tuple):
            a, b, c = slice(*part[1:]).indices(n)
        else:
            a, b, c = part % n, part % n + 1, 0
        start.append(a), stop.append(b), step.append(c)
    return tuple(start), tuple(stop), tuple(step)


def _ranges_key(start, stop, step) -> tuple:
    """The numpy index of `_ranges`: a slice whose normalized stop is -1 runs through 0."""
    start, stop, step = as_shape(start), as_shape(stop), as_shape(step)
    return tuple(
        a if c == 0 else slice(a, None if b < 0 else b, c)
        for a, b, c in zip(start, stop, step, strict=True)
    )


def _unindex_shape(g: Shape, shape, start, stop, step) -> Shape:
    """The shape attribute, once g is known to fit (or broadcast) into start:stop:step of it."""
    shape, start, stop, step = (as_shape(a) for a in (shape, start, stop, step))
    if not len(start) == len(stop) == len(step) <= len(shape):
        raise ValueError(
            f"unindex needs start, stop and step of the same length, at most one per axis of "
            f"shape {list(shape)}, not {list(start)}, {list(stop)} and {list(step)}"
        )
    try:
        region = np.broadcast_to(0.0, shape)[_ranges_key(start, stop, step)].shape
    except (ValueError, IndexError) as exc:
        raise ValueError(f"unindex cannot place g in shape {list(shape)}: {exc}") from None
    try:
        fits = np.broadcast_shapes(g, region) == region
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"unindex cannot place g of shape {g} in a region of shape {region}")
    return shape


def _unindex_vjp(node: Node, g: Node, shape_of: ShapeOf) -> tuple:
    part = _apply("index", g, attrs=(_written_key(*node.attrs[1:]),))
    (x,) = node.inputs
    region = np.broadcast_to(0.0, shape_of(node))[_ranges_key(*node.attrs[1:])].shape
    if region != shape_of(x):  # g was broadcast into its region
        part = _apply("sum_to", part, attrs=(shape_of(x),))
    return (part,)


def _written_key(start, stop, step) -> tuple:
    """`_ranges_key` in the form index nodes store (slices as hashable tuples)."""
    return tuple(
        k if isinstance(k, int) else ("slice", k.start, k.stop, k.step)
        for k in _ranges_key(start, stop, step)
    )


register(Primitive(
    "index", 1, lambda x, key: np.asarray(x)[_key(key)], "x[i], x[1:3], x[0, :]",
    vjp=lambda node, g, shape_of: (
        _apply(
            "unindex", g,
            attrs=(shape_of(node.inputs[0]), *_ranges(node.attrs[0], shape_of(node.inputs[0]))),
        ),
    ),
    shape=_index_shape, analytic=True, public=False, jvp=_same_on_tangent("index"),
    batch=lambda args, flags, items, out, key: np.asarray(args[0])[(slice(None), *_key(key))],
))  # fmt: skip

register(Primitive(
    "unindex", 1, _unindex,
    "zeros of the shape, with g at the elements start:stop:step of each axis (a step of 0: the "
    "single element start, an axis g does not have); the reverse of indexing",
    vjp=_unindex_vjp, shape=_unindex_shape, analytic=True,
    jvp=_same_on_tangent("unindex"), params=("g",),
    batch=lambda args, flags, items, out, *attrs: _unindex(args[0], *attrs, batched=True),
    attr_params=(("shape", ()), ("start", ()), ("stop", ()), ("step", ())),
    python="_unindex(@0, @shape, @start, @stop, @step)",
    python_uses=(as_shape, _ranges_key, _unindex),
))  # fmt: skip


# --- matrix products ----------------------------------------------------------------------


def _promoted(sa: Shape, sb: Shape) -> tuple[Shape, Shape]:
    """Vectors as matrices: a row vector on the left, a column vector on the right."""
    return ((1, *sa) if len(sa) == 1 else sa), ((*sb, 1) if len(sb) == 1 else sb)


def _matmul_shape(sa: Shape, sb: Shape) -> Shape:
    if not sa or not sb:
        raise ValueError("@ needs arrays on both sides; scale by a number with *")
    pa, pb = _promoted(sa, sb)
    if pa[-1] != pb[-2]:
        raise ValueError(f"@ needs matching inner dimensions, not {sa} @ {sb}")
    out = (*np.broadcast_shapes(pa[:-2], pb[:-2]), pa[-2], pb[-1])
    if len(sa) == 1:  # a promoted vector loses its row axis again, b's its column axis
        out = out[:-2] + out[-1:]
    return out[:-1] if len(sb) == 1 else out


def _swap_last(x: Node, ndim: int) -> Node:
    return _apply("transpose", x, attrs=((*range(ndim - 2), ndim - 1, ndim - 2),))


def _matmul_vjp(node: Node, g: Node, shape_of: ShapeOf, size=lambda v: v) -> tuple:
    a, b = (size(v) for v in node.inputs)
    sa, sb = (shape_of(v) for v in node.inputs)
    pa, pb = _promoted(sa, sb)
    out = (*np.broadcast_shapes(pa[:-2], pb[:-2]), pa[-2], pb[-1])
    big_a, big_b = _apply("reshape", a, attrs=(pa,)), _apply("reshape", b, attrs=(pb,))
    big_g = _apply("reshape", g, attrs=(out,))
    da = _apply("matmul", big_g, _swap_last(big_b, len(pb)))
    db = _apply("matmul", _swap_last(big_a, len(pa)), big_g)
    da = _apply("reshape", _apply("sum_to", da, attrs=(pa,)), attrs=(sa,))
    db = _apply("reshape", _apply("sum_to", db, attrs=(pb,)), attrs=(sb,))
    return da, db


def _matmul_jvp(node: Node, ts: list, shape_of: ShapeOf) -> Node:
    """d(a @ b) = da @ b + a @ db."""
    (a, b), (ta, tb) = node.inputs, ts
    terms = []
    if ta is not None:
        terms.append(_apply("matmul", ta, b))
    if tb is not None:
        terms.append(_apply("matmul", a, tb))
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


def _matmul_batched(args, flags, items, out):
    (sa, sb) = items
    pa, pb = _promoted(sa, sb)
    rank = 1 + max(len(pa), len(pb))
    operands = []
    for x, batched, promoted in zip(args, flags, (pa, pb), strict=True):
        x = np.asarray(x)
        lead = x.shape[:1] if batched else ()
        operands.append(x.reshape(lead + (1,) * (rank - len(lead) - len(promoted)) + promoted))
    result = np.matmul(*operands)
    if len(sa) == 1:
        result = result[..., 0, :]
    return result[..., 0] if len(sb) == 1 else result


register(Primitive(
    "matmul", 2, np.matmul, "matrix product (also written a @ b)",
    vjp=_matmul_vjp, jvp=_matmul_jvp, shape=_matmul_shape, batch=_matmul_batched, analytic=True,
    magnitude_vjp=lambda node, g, shape_of: _matmul_vjp(
        node, g, shape_of, lambda v: _apply("abs", v)
    ),
    operator=Operator("@", 2, "left"), params=("a", "b"), public=False,
))  # fmt: skip


def _dot(call: Any) -> Node:
    """dot(a, b): the sum of a*b along the last axis (the dot product of vectors)."""
    a, b = call.positional(2)
    span = call.call.span
    product = call.graph.apply("mul", a, b, span=span)
    return call.graph.apply("sum", product, attrs=(-1,), span=span)


register(Primitive(
    "dot", 2, None, "dot product along the last axis: sum(a*b, axis=-1)",
    lower=_dot, params=("a", "b"),
))  # fmt: skip
