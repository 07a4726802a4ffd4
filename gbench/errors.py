"""The one exception type that means "the user gave bad input".

The CLI prints a ``GbenchError`` as one line and exits with code 2; anything
else is a bug and keeps its traceback.
"""


class GbenchError(Exception):
    """Bad input: an unknown name, a bad value, missing data, a broken plugin.

    The message must name the bad value and say how to fix it.
    """
