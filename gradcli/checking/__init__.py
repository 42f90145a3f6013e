"""Derivatives checked against finite differences: the steps and stencils (`finite_diff`),
kinks and one-sided derivatives (`kinks`), tolerances (`tolerances`), the engine that reaches
verdicts (`engine`), chunks of large samples (`merging`), check files (`checkfile`, which loads
them, with their cases in `cases`, the project's files and settings in `project` and the located
TOML reader in `reader`) and their runner (`runner`), step sweeps (`sweep`) and checks of Python
functions (`pyfunc`).

May import evaluation and everything below it; not the API, the output or the command line.
"""
