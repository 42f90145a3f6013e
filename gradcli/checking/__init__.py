"""Derivatives checked against finite differences: the steps and stencils (`finite_diff`),
kinks and one-sided derivatives (`kinks`), tolerances (`tolerances`), the engine that reaches
verdicts (`engine`), chunks of large samples (`merging`), check files (`checkfile`) and their
runner (`runner`), step sweeps (`sweep`) and checks of Python functions (`pyfunc`).

May import evaluation and everything below it; not the API, the output or the command line.
"""
