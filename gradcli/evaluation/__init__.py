"""Graphs to numbers: the interpreter (`interpreter`), faults where a nan, an inf or an
underflow starts and their located accounts (`faults`, `underflow`), the value and gradient of
a program at a point (`gradient`), parsing and formatting of values (`values`), batches of
points from JSON Lines (`batch`), minimization (`minimize`) and the derivatives of `diff`
(`derivatives`).

May import the transforms and everything below them; not the checker, the API or the output.
"""
