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
