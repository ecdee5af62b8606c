"""The CLI's usage error, apart from `cluster.cli` so that the modules of its
command groups (`cluster.cli_auth`) raise it without importing the CLI itself."""
from __future__ import annotations


class UsageError(Exception):
    """A bad command line: exit 2 with one line."""
