"""Test helpers that ship with cvtool: the strict CuPy-like backend (:mod:`cvtool.testing.strict`).

Nothing here is imported by the library or the CLI unless a test registers it.
"""
