"""User-facing errors: the CLI prints them as one line and exits non-zero."""


class SpikedeployError(Exception):
    """A problem with the user's input or request, explained in one line."""


class UnsupportedError(SpikedeployError):
    """A node or parameter a backend cannot represent.

    Always names the node, the field and the reason, so that nothing is
    dropped silently.
    """

    def __init__(self, node: str, field: str, reason: str, backend: str = ""):
        self.node, self.field, self.reason, self.backend = node, field, reason, backend
        where = f" ({backend})" if backend else ""
        super().__init__(f"node '{node}', field '{field}'{where}: {reason}")


def first_line(exc: BaseException, fallback: str = "") -> str:
    """The first line of an exception's message (``fallback`` when it has none): what a
    one-line error quotes of an exception raised by a library or the user's code."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else fallback
