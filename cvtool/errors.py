"""The one user-facing exception.

Bad user input raises :class:`CvtoolError` with one line naming the parameter,
the rule and the value, e.g. "The 'k' parameter must be an int >= 1. Got 0
instead." The CLI turns it into ``error: ...`` on stderr and exit code 2.
Bugs are not CvtoolErrors and keep their tracebacks.
"""


class CvtoolError(ValueError):
    """A user error: bad input, impossible settings, missing files."""


def check(condition: bool, message: str) -> None:
    """Raise CvtoolError(message) unless condition holds."""
    if not condition:
        raise CvtoolError(message)
