"""The IR: nodes built through one hash-consing constructor, their shapes, and the table of
primitives (the `Primitive` record; `registry`), which the primitives package fills.

May import only the language's floor (`language.source`, `language.limits`); never the
primitives (their rules build nodes with this package's operations) nor anything above.
"""
