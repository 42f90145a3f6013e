"""Graphs to numbers: the interpreter with fault diagnosis (`interpreter`), parsing and
formatting of values (`values`), batches of points from JSON Lines (`batch`), minimization
(`minimize`) and the derivatives of `diff` (`derivatives`).

May import the transforms and everything below them; not the checker, the API or the output.
"""
