"""The one exception type users see: a one-line message that names the problem and the fix."""


class TwinError(ValueError):
    """Bad input or configuration. ``str(err)`` is one line: what is wrong and how to fix it."""
