"""cvtool: composable commands for computer-vision and deep-learning basics.

The library lives in the sub-modules (``shapes``, ``summary``, ``knn``,
``boxes``, ``augment``, ``nn``, ``data``); the command line in ``cvtool.cli``. Importing
this package imports nothing heavy.
"""

__version__ = "0.1.0"
