"""The one exception type for user mistakes.

A `UserError` carries a single sentence naming the file and the fix; the CLI prints it and exits with
code 2, without a traceback. Everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A mistake the user can fix: missing file, unreadable video, no face found, bad option."""
