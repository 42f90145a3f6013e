"""The command line, the top of the pipeline. The console script starts in `entry` (a quick path
for `gradcli eval` that answers without Typer, Rich or Lark), else runs the Typer app of `app`,
which imports the commands' modules: `eval_commands` (eval and its --batch, jacobian, jvp,
hessian), `minimize_command`, `check_command` (with the cases it collects in `check_cases`) and
`inspect_commands` (diff, graph, explain). They register on the app of `common`, which holds
what they share (options, exit codes, showing a result, failing) and imports none of them.
Beside them: the argument scanner (`arguments`) and output streams (`streams`).

May import every layer; nothing imports it but the entry points.
"""
