"""The tolerance rule of gradient checks, in one place for the code, --help and the docs.

Kept free of imports so that the command line can show it without loading numpy.
"""

SAFETY = 4.0  # multiple of the reference's own error estimate allowed on top of atol + rtol·|r|
DEFAULT_RTOL = {"float64": 1e-7, "float32": 1e-3}
DEFAULT_ATOL = 0.0

TOLERANCE_RULE = (
    "A derivative passes when |g - r| <= atol + rtol·|r| + 4·e, where g is the autograd value, "
    "r the finite-difference reference and e the reference's own error estimate "
    "(defaults: rtol 1e-7 in float64, 1e-3 in float32; atol 0)."
)
