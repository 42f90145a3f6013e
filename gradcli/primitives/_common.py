"""What the family modules share: nodes built by name, the parts of complex values, and axes.

A derivative rule is a formula over graph nodes, and the builders here make those nodes by name
(`cos(x)` is the node cos(x); `_apply` takes attributes too), so that a rule of one family can use
a primitive of another without importing its module. The complex-step forwards of several
families keep real and imaginary parts apart with the same few helpers. The array families check
and shift axes alike, and `_reduction` makes a primitive that reduces one array along an
optional axis (sum, mean, prod, max, min, norm, logsumexp). Imports only the graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..graph.nodes import Node
from ..graph.registry import Primitive, Shape, register

ShapeOf = Callable[[Node], Shape]

# --- nodes built by name ----------------------------------------------------------------------


def _op(name: str) -> Callable[..., Node]:
    """A function that builds the graph node `name(*args)` in the graph of its node arguments."""

    def build(*args: Node | float) -> Node:
        graph = next(a for a in args if isinstance(a, Node)).graph
        return graph.apply(name, *args)

    build.__name__ = name
    return build


sin, cos, exp, log, sqrt, sinh, cosh, tanh, sech = map(
    _op, ["sin", "cos", "exp", "log", "sqrt", "sinh", "cosh", "tanh", "sech"]
)
sign, heaviside, sigmoid, hypot, xlogy, equal = map(
    _op, ["sign", "heaviside", "sigmoid", "hypot", "xlogy", "equal"]
)


def _apply(name: str, *args: Node | float, attrs: tuple = ()) -> Node:
    graph = next(a for a in args if isinstance(a, Node)).graph
    return graph.apply(name, *args, attrs=attrs)


def _abs(v: Node) -> Node:
    """|v| as a node: the size of a rule's terms, for the magnitude and error rules."""
    return _apply("abs", v)


def _reciprocal_or_zero(d: Node) -> Node:
    """1/d, and 0 where d is 0: the coefficients of the eigen- and singular-vector rules, where
    values that meet (or a singular value of 0) are kinks and a finite value lets the checker
    judge them."""
    zero = _apply("equal", d, 0.0)
    return _apply("where", zero, 0.0, 1.0 / (d + zero))


def _inverse_gaps(w: Node) -> Node:
    """F with Fᵢⱼ = 1/(wⱼ − wᵢ) off the diagonal, 0 on it and where values tie, for each vector
    of values w along the last axis."""
    d = _apply("expand_dims", w, attrs=(-2,)) - _apply("expand_dims", w, attrs=(-1,))
    return _reciprocal_or_zero(d)


def _swap_last(x: Node, ndim: int) -> Node:
    """Each matrix of a stack transposed: the last two of `ndim` axes swapped."""
    return _apply("transpose", x, attrs=((*range(ndim - 2), ndim - 1, ndim - 2),))


def _reversed_cumsum(v: Node, axis: int) -> Node:
    """The running sums from the end: the adjoint of cumsum (and a part of cumprod's)."""
    flipped = _apply("flip", v, attrs=(axis,))
    return _apply("flip", _apply("cumsum", flipped, attrs=(axis,)), attrs=(axis,))


def _polynomial(u: Node, coefficients: tuple[float, ...]) -> Node | float:
    """Σ cₖ·uᵏ, by Horner's rule: the series of a rule where its closed form cancels."""
    total: Node | float = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        total = c + u * total
    return total


def _same_on_tangent(name: str) -> Callable[..., Node]:
    """The jvp of a linear primitive: the primitive itself, applied to the tangent."""
    return lambda node, ts, shape_of: _apply(name, ts[0], attrs=node.attrs)


# --- complex values ----------------------------------------------------------------------------


def _complex(*xs: object) -> bool:
    return any(np.iscomplexobj(x) for x in xs)


def _real_or_complex(real: Callable[..., Any], complex_: Callable[..., Any]) -> Callable[..., Any]:
    """A forward that keeps `real` for real input, bit for bit, and takes `complex_` for the
    complex step."""

    def forward(*args: Any) -> Any:
        return complex_(*args) if _complex(*args) else real(*args)

    forward.__name__ = real.__name__
    return forward


# --- Helpers of the complex forwards ----------------------------------------------------------
# The complex step puts a tiny imaginary part on a real point: 2^-1022 next to 1e30, say. Each
# part of the result must still be accurate to a few ulps, so these keep the parts apart and
# never let a partial result of one part underflow while the whole part does not.


def _pack(re: Any, im: Any) -> np.ndarray:
    """re + i·im, without the nan that re + 1j*im makes of an infinite im (1j*inf = nan + inf·i)."""
    re, im = np.asarray(re), np.asarray(im)
    out = np.empty(np.broadcast_shapes(re.shape, im.shape), np.result_type(re, im, np.complex64))
    out.real, out.imag = re, im
    return out


def _scaled(*factors: Any, over: tuple[Any, ...] = ()) -> Any:
    """The product of `factors` divided by those in `over`, with mantissas and binary exponents
    kept apart until the end, so that no partial product overflows or underflows: a·d/(c·t) for
    1e300·2^-1022/(1e30·1e30) is 2.2e-68, though a·d/c alone rounds d/c to 0."""
    m, e = 1.0, 0
    for f in factors:
        fm, fe = np.frexp(f)
        m, e = m * fm, e + fe
    for g in over:
        gm, ge = np.frexp(g)
        m, e = m / gm, e - ge
    return np.ldexp(m, e)


def _divide(n: Any, d: Any) -> np.ndarray:
    """n/d, each part to a few ulps. numpy's complex division (Smith's) first rounds
    Im d/Re d, to 0 for 2^-1022/1e30, and with it the imaginary part of the quotient."""
    a, b, c, e = np.real(n), np.imag(n), np.real(d), np.imag(d)
    # (a + ib)/(c + ie) = (b - ia)/(e - ic): divide by the larger part.
    swap = np.abs(e) > np.abs(c)
    a, b = np.where(swap, b, a), np.where(swap, -a, b)
    c, e = np.where(swap, e, c), np.where(swap, -c, e)
    r = e / c
    t = c * (1 + r * r)  # |d|²/c
    return _pack(a / t + _scaled(b, e, over=(c, t)), b / t - _scaled(a, e, over=(c, t)))


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


def _axis_argument(
    call: Any, position: int, default: int | None, what: str, others: frozenset = frozenset()
) -> int | None:
    """The axis of a call whose hook lowers it (concatenate, take, norm): by position after
    the `position` arguments before it, or by name; one whole number written in the program.
    `others` are the call's other keywords, which its hook reads."""
    extra = call.args[position:]
    if len(extra) > 1 or set(call.keywords) - {"axis", *others}:
        raise call.error(f"{call.name} takes {what} and an axis")
    if "axis" in call.keywords:
        if extra:
            raise call.error("axis is given twice", call.keyword_spans["axis"])
        node, span = call.keywords["axis"]
    elif extra:
        node, span = extra[0], call.arg_spans[position]
    else:
        return default
    value = node.value if node.op == "const" else None
    whole = value is not None and np.ndim(value) == 0 and np.isfinite(value) and value % 1 == 0
    if not whole:
        raise call.error(f"{call.name}'s axis is one whole number written in the program", span)
    return int(value)


def _square(name: str, s: Shape) -> int:
    """The size of the square matrices of shape s (a stack of them), or an error naming name."""
    if len(s) < 2 or s[-1] != s[-2]:
        raise ValueError(f"{name} needs a square matrix (or a stack of them), not shape {s}")
    return s[-1]


def _fills(g: Shape, region: Shape) -> bool:
    """Whether g broadcasts onto region exactly: what an adjoint placed there may be."""
    try:
        return np.broadcast_shapes(g, region) == region
    except ValueError:
        return False


def _running_shape(s: Shape, axis: Any) -> Shape:
    """The shape of running sums or products (cumsum, cumprod): of the flattened array for
    axis None, as numpy's."""
    if axis is None:
        return (int(np.prod(s, dtype=int)),)
    _axis(axis, len(s))
    return s


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
    **forms: Any,  # latex, python, python_uses, singular
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


# --- matrices: LAPACK's precisions, singular matrices as nan ------------------------------------


def _lapack(a: Any) -> np.ndarray:
    """`a` in a precision numpy.linalg takes: LAPACK has no longdouble, which the wider
    evaluations (for longdouble's exponent range) pass; a matrix of float64 numbers is kept."""
    a = np.asarray(a)
    if a.dtype == np.longdouble:
        return a.astype(np.float64)
    return a.astype(np.complex128) if a.dtype == np.clongdouble else a


def _nan_where_singular(function: Any, a: np.ndarray, *rest: np.ndarray) -> np.ndarray:
    """function over a stack, with nan for each matrix that is singular: numpy raises for the
    whole stack, and gradcli reports a fault at each point where it happens instead."""
    a, rest = _lapack(a), tuple(_lapack(r) for r in rest)
    try:
        return function(a, *rest)
    except np.linalg.LinAlgError:
        pass
    lead = np.broadcast_shapes(a.shape[:-2], *(r.shape[:-2] for r in rest))
    a = np.broadcast_to(a, lead + a.shape[-2:])
    rest = tuple(np.broadcast_to(r, lead + r.shape[-2:]) for r in rest)
    shape = np.shape(function(np.eye(a.shape[-1]), *(np.ones(r.shape[-2:]) for r in rest)))
    out = np.empty(lead + shape, dtype=np.result_type(a, *rest, np.float64))
    for idx in np.ndindex(lead):
        try:
            out[idx] = function(a[idx], *(r[idx] for r in rest))
        except np.linalg.LinAlgError:
            out[idx] = np.nan
    return out
