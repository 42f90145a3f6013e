"""The tolerance rule of gradient checks, in one place for the code, --help and the docs.

Kept free of imports so that the command line can show it without loading numpy.
"""

SAFETY = 4.0  # multiple of the reference's own error estimate allowed on top of atol + rtol·|r|
DEFAULT_RTOL = {"float64": 1e-7, "float32": 1e-3}
DEFAULT_ATOL = 0.0

TOLERANCE_RULE = (
    "A derivative passes when |g - r| <= atol + rtol·|r| + 4·(e + ε·s), where g is the autograd "
    "value, r the finite-difference reference, e the reference's own error estimate, ε the "
    "machine epsilon and s a bound on the rounding error of g and of r in units of ε (the sum "
    "over all chain-rule paths of |product of local derivatives|, plus a running error bound of "
    "the gradient's computation, which grows where the forward values cancel), plus the "
    "smallest normal number, below which precision is lost. "
    "Defaults: rtol 1e-7 in float64, 1e-3 in float32; atol 0."
)
