"""Graphs to graphs: reverse mode (`reverse`), forward mode (`forward`), simplification
(`simplify`) and the running error bounds of a computation (`rounding`). Each returns nodes of
the same graph, so that their results can be printed, evaluated and differentiated again.

May import the graph, the primitives and the language; nothing that evaluates.
"""
