"""Errors a user can act on. The CLI prints their message (in Chinese) and exits 2."""


class CallauditError(Exception):
    """Base class: str(err) is a one-line message for the user."""


class InputError(CallauditError):
    """A recording could not be read: names the file and what to do."""

    def __init__(self, path: str, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class ModelError(CallauditError):
    """The ASR or classifier model is missing, corrupt or incompatible."""


class RuleError(CallauditError):
    """A rule or data file is invalid: names the file (and line) and the problem."""
