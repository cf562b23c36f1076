"""The one exception type for user mistakes: the CLI prints its message on one line and exits 2."""


class UserError(Exception):
    """A mistake in what the user asked for (name, setting, path), not a bug in the harness."""
