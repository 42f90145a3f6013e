"""The command line, the top of the pipeline: the Typer app and its commands (`app`,
`inspect_commands`), the argument scanner (`arguments`), the quick start-up path that answers
without Typer, Rich or Lark (`entry`), and output streams (`streams`).

May import every layer; nothing imports it but the entry points.
"""
