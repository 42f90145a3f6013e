"""What gradcli prints and writes, a module per kind of output.

For people, on the terminal (Rich): the consoles, messages and number formatting every table
shares (`console`); the tables of the commands at a point, eval, jacobian, jvp and hessian, with
their JSON (`at_point`); gradcli check's tables and progress bar (`check_tables`) and its --sweep
plots (`sweep`); minimize's report, loss curve and progress bar (`training`); the backward pass
that explain tabulates (`explain`) and the pictures of the graph (`pictures`).
For machines and files: JSON documents and eval's table without Rich, for its quick path
(`documents`); check's JSON, JUnit XML and GitHub annotations (`reports`); diff's derivatives as
text, LaTeX, Python or JSON (`diff`, with the LaTeX and Python printers in `formats`).

A new output goes beside the others of its command, or in a module of its own named after it.
May import the API and everything below it; never the command line.
"""
