"""The one exception type for user mistakes.

A `UserError` carries a single sentence naming the file and the fix; the CLI prints it and exits with
code 2, without a traceback. Everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A mistake the user can fix: missing file, unreadable video, no face found, bad option."""


def warn(message: str) -> None:
    """One yellow sentence on stderr: something the user should know, but the command goes on."""
    from dfjax.progress import console

    console.print(f"[bold yellow]warning:[/] {message}", highlight=False, soft_wrap=True)
