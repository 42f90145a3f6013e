"""prod and its derivatives: prod_except, the product of the other elements (∂prod/∂x_j), and
prod_pairs, each higher derivative of prod applied to tangents; and cumprod, the running
products.

No division, so zeros are exact. For the complex step the same products are formed in a wide
form, `_Wide`, whose real and imaginary parts keep their own binary exponents, so that no
partial product loses a tiny imaginary part to underflow.

Unlike the elementwise primitives, each of these states its output shape, its vector-Jacobian
product (written with graph operations, with the static shapes of its inputs at hand) and its batch
rule (the same operation with a leading batch axis, which shifts every axis it names).
"""

from __future__ import annotations

import operator
from functools import reduce
from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import REGISTRY, Primitive, register
from ._common import (
    ShapeOf,
    _abs,
    _apply,
    _axis,
    _complex,
    _expand,
    _in_batch,
    _pack,
    _reduction,
    _reversed_cumsum,
    _running_shape,
    _same_shape,
)

# --- the real products ----------------------------------------------------------------------


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


def _prod(x: Any, axis: Any) -> Any:
    return _wide_prod(x, axis) if np.iscomplexobj(x) else np.prod(x, axis=axis)


def _exclusive(x: Any, axis: Any) -> Any:
    return _wide_exclusive(x, axis) if np.iscomplexobj(x) else _exclusive_product(x, axis)


def _pairs_of(x: Any, *ts: Any, axis: Any = None) -> Any:
    if _complex(x, *ts):
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


# --- cumprod ------------------------------------------------------------------------------------


def _cumprod(x: Any, axis: Any, batched: bool = False) -> Any:
    x = np.asarray(x)
    lead = 1 if batched else 0
    if axis is None:  # numpy's: the flattened array
        x, a = x.reshape((*x.shape[:lead], -1)), lead
    else:
        a = lead + _axis(axis, x.ndim - lead)
    if not np.iscomplexobj(x):
        return np.cumprod(x, axis=a)
    # The complex step: each part kept apart, as prod's (the imaginary part of a product of
    # six, 1e-258, must not underflow on the way).
    return np.moveaxis(_wide_scan(_Wide.of(np.moveaxis(x, a, 0))).value(), 0, a)


def _zeros_along(x: Node, axis: int) -> tuple[Node, Node, Node, Node]:
    """Where x is before its first 0 along the axis, where it is that 0, x with that 0 taken
    as 1 (x₁), and x₁ with any later 0 taken as 1, to divide by."""
    zero = _apply("equal", x, 0.0)
    seen = _apply("cumsum", zero, attrs=(axis,))
    before = _apply("equal", seen, 0.0)
    first = zero * _apply("equal", seen, 1.0)
    x1 = _apply("where", first, 1.0, x)
    return before, first, x1, _apply("where", _apply("equal", x1, 0.0), 1.0, x1)


def _at_first(first: Node, v: Node, axis: int) -> Node:
    """v at the first 0 along the axis (0 where there is none), kept as an axis of length 1."""
    return _apply("expand_dims", _apply("sum", first * v, attrs=(axis,)), attrs=(axis,))


def _flat(node: Node, x: Node, axis: Any, shape_of: ShapeOf) -> tuple[Node, int]:
    """x flattened for axis None (numpy's cumprod of the flattened array), and the axis."""
    if axis is not None:
        return x, axis
    return _apply("reshape", x, attrs=(shape_of(node),)), 0


def _cumprod_vjp(node: Node, g: Node, shape_of: ShapeOf, size=lambda v: v) -> tuple:
    """x̄ⱼ = Σ_{i≥j} gᵢ·Π_{k≤i, k≠j} xₖ, without dividing by a 0 (see `_running_adjoint`)."""
    (x,), (axis,) = node.inputs, node.attrs
    x, along = _flat(node, size(x), axis, shape_of)
    back = _running_adjoint(x, g, along, size(node), depth=1)
    if axis is not None:
        return (back,)
    return (_apply("reshape", back, attrs=(shape_of(node.inputs[0]),)),)


def _running_adjoint(x: Node, g: Node, along: int, products: Node, depth: int) -> Node:
    """Σ_{i≥j} gᵢ·Π_{k≤i, k≠j} xₖ, `products` being cumprod(x). Before the first 0 along the
    axis it is the reversed running sum of g·cumprod(x), over xⱼ; at the first 0, the same sum
    with that 0 taken as 1 (x₁); after it, that 0 times the adjoint of x₁, so that the
    derivative in the 0 is right. With `depth` 1, the adjoint of x₁ is this one again, exact at
    the second 0: second derivatives hold with two zeros along the axis (depth 0 divides by
    xⱼ, with a later 0 taken as 1: right in value, its derivative in that 0 lost)."""
    before, first, x1, safe = _zeros_along(x, along)
    ones = _apply("cumprod", x1, attrs=(along,))
    kept = _reversed_cumsum(g * ones, along)
    inner = _running_adjoint(x1, g, along, ones, depth - 1) if depth else kept / safe
    after = _apply("where", first, kept, _at_first(first, x, along) * inner)
    return _apply("where", before, _reversed_cumsum(g * products, along) / safe, after)


def _cumprod_jvp(node: Node, ts: list, shape_of: ShapeOf, size=lambda v: v) -> Node:
    """Σ_{j≤i} tⱼ·Π_{k≤i, k≠j} xₖ: before the first 0, cumprod(x)·cumsum(t/x); from it on,
    c₁·(t₀ + x₀·(cumsum(t/x₁) − t₀)) with x₀, t₀ the 0 and its tangent, by the same steps as
    the vjp."""
    (x,), (axis,) = node.inputs, node.attrs
    x, along = _flat(node, size(x), axis, shape_of)
    t, _ = _flat(node, ts[0], axis, shape_of)
    before, first, x1, safe = _zeros_along(x, along)
    running = _apply("cumsum", t / safe, attrs=(along,))
    t0 = _at_first(first, t, along)
    rest = _apply("cumprod", x1, attrs=(along,)) * (
        t0 + _at_first(first, x, along) * (running - t0)
    )
    return _apply("where", before, size(node) * running, rest)


register(Primitive(
    "cumprod", 1, _cumprod, "the running products along axis (of the flattened array for None)",
    vjp=_cumprod_vjp, jvp=_cumprod_jvp, shape=_running_shape, analytic=True,
    magnitude_vjp=lambda node, g, shape_of: _cumprod_vjp(node, g, shape_of, _abs),
    error_jvp=lambda node, es, shape_of: _cumprod_jvp(node, es, shape_of, _abs),
    attr_params=(("axis", None),),
    batch=lambda args, flags, items, out, axis: _cumprod(args[0], axis, True),
    python="np.cumprod(@0, @axis)",
))  # fmt: skip
