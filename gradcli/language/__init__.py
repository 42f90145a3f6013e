"""Text to graph and back: the language of gradcli.

Holds source spans and located errors (`source`), the limits on what a run takes in
(`limits`), the syntax tree (`syntax`), the parser and its generated tables (`parser`,
`_tables`), lowering of the tree to the graph (`lower`) and the printer of graphs as text
(`printer`). `source` and `limits` are the floor that every layer may import; they import
nothing of gradcli. The rest may import the graph and the primitives, and nothing above them.
"""
