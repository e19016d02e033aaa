"""The one error operations raise for a request they refuse or a step that failed: one line, said as is."""


class OperationError(RuntimeError):
    """A refused request (nothing changed) or a failed step; the message names the student, stack or flag."""


class RefusedError(OperationError):
    """Refused before anything changed (bad input, wrong state): the CLI exits 2."""
