"""Derivatives checked against finite differences, and the verdicts that come of it.

- The engine (`engine.check`) and its records (`verdicts`): a check of a program at a batch of
  points, chunked for large samples (`merging`), with a Hessian's symmetry (`hessian`).
- Its passes, one concern each, on the shared state of `run.Run` (built on what `structure`
  reads from the graph, with `probes` and their entries): `probing` (references and verdicts
  by the complex step or Richardson differences), `confirmation` (ladders of smaller steps,
  refinement next to kinks), `modes` (forward against reverse mode), `subgradients` (the
  gradient as a whole at kinks) and `blame` (which primitive's rule is wrong).
- The numerical pieces: steps and stencils (`finite_diff`), one-sided derivatives and
  directions at kinks (`kinks`), tolerances (`tolerances`).
- Check files (`checkfile` loads them: their cases in `cases`, the project's files and
  settings in `project`, the located TOML reader in `reader`) and their runner (`runner`),
  per-entry records of a case (`records`), step sweeps (`sweep`) and checks of Python
  functions (`pyfunc`).

May import evaluation and everything below it; not the API, the output or the command line.
"""
