"""Networks: layers, activations, costs, optimisers, initialisers, Sequential models.

Import the sub-modules directly (``cvtool.nn.spec`` is pure Python, so that
``layer-calc`` can parse architectures without NumPy).
"""
