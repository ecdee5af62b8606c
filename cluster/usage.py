"""The CLI's exit codes and usage errors, apart from `cluster.cli` so that the
modules of its command groups (`cluster.cli_auth`) raise them without importing
the CLI itself.

The codes are etcdctl 3.4's (ctlv3/command/error.go), so that scripts written for
etcdctl read ours the same way.
"""
from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    SUCCESS = 0
    ERROR = 1  # the operation failed: the cluster refused it, a timeout, ...
    BAD_CONNECTION = 2  # no endpoint accepts a connection; no cluster found
    INVALID_INPUT = 3  # a txn or watch input that does not parse
    BAD_FEATURE = 4  # a valid flag with an unsupported value (e.g. --sort-by SIZE)
    INTERRUPTED = 5  # Ctrl-C (where it is not the command's ordinary end)
    IO = 6  # reading or writing a local file failed
    BAD_ARGS = 128  # a bad flag, a missing argument, an empty key


class UsageError(Exception):
    """A bad command line: exit `code` (128) with one line, before anything connects."""

    code = ExitCode.BAD_ARGS


class InvalidInputError(UsageError):
    """A txn or watch input that does not parse (etcdctl's ExitInvalidInput)."""

    code = ExitCode.INVALID_INPUT


class BadFeatureError(UsageError):
    """A valid flag with a value we do not support (etcdctl's ExitBadFeature)."""

    code = ExitCode.BAD_FEATURE


class LocalIOError(UsageError):
    """A local file the command needs cannot be read (etcdctl's ExitIO)."""

    code = ExitCode.IO
