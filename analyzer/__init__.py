"""callaudit: offline audit of recorded Chinese debt-collection calls."""

from importlib.metadata import PackageNotFoundError, version

from .types import CATEGORIES, CallReport, Finding, Segment

__all__ = ["CATEGORIES", "CallReport", "Finding", "Segment", "callaudit_version"]


def callaudit_version() -> str:
    try:
        return version("callaudit")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"
