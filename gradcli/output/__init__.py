"""What gradcli prints and writes: terminal tables (`render`), JSON documents (`documents`),
JUnit and GitHub annotations (`reports`), LaTeX and Python formats (`formats`), the backward
pass of `explain` (`explain`) and pictures of the graph (`pictures`).

May import the API and everything below it; never the command line.
"""
