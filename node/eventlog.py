"""Operator logs: one line per event on stderr, each with node id, term and index.

`EventLog.info("became leader")` prints e.g.

    2024-05-01T12:00:00.123 INFO node=2 term=5 commit=118 applied=118 became leader

Anything a remote party can trigger (garbage frames, unknown senders) goes through
`rate_limited`, which prints at most one line per kind per interval and says how
many it suppressed, so a hostile or broken peer cannot flood the disk.

`--log-format json` (`configure(fmt="json")`): the same events, one JSON object
per line, for log collectors that would otherwise parse the text:

    {"ts": "2024-05-01T12:00:00.123Z", "level": "INFO", "node": 2, "term": 5,
     "commit": 118, "applied": 118, "msg": "became leader"}

`node` and the indexes are there when the line has them (always for the loop's
events; lines logged before the node has a term carry only `node`).
"""
from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

LOGGER_NAME = "jangada.node"
LOG_FORMATS = ("text", "json")
#: `key=int` pairs at the start of a line: the position EventLog prefixes, or the
#: `node=N` other node lines start with.
_POSITION = re.compile(r"([a-z_]+)=(\d+) ")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts (UTC, ms), level, the position's fields, msg."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname}
        message = record.getMessage()
        position = 0
        while match := _POSITION.match(message, position):
            fields[match.group(1)] = int(match.group(2))
            position = match.end()
        fields["msg"] = message[position:]
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return json.dumps(fields, ensure_ascii=False)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """`fmt`: "text" (one line per event) or "json" (one JSON object per line)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s.%(msecs)03d %(levelname)s %(message)s",
                                           "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger(LOGGER_NAME)
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


@dataclass(slots=True)
class EventLog:
    """Prefixes every line with the node's position; `position()` is read at each
    call so the term and index are those at the event."""

    position: Callable[[], str]
    interval: float = 5.0
    clock: Callable[[], float] = time.monotonic
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger(LOGGER_NAME))
    _last: dict[str, float] = field(default_factory=dict)
    _suppressed: dict[str, int] = field(default_factory=dict)

    def _emit(self, level: int, message: str) -> None:
        if self.logger.isEnabledFor(level):
            self.logger.log(level, "%s %s", self.position(), message)

    def debug(self, message: str) -> None:
        self._emit(logging.DEBUG, message)

    def info(self, message: str) -> None:
        self._emit(logging.INFO, message)

    def warning(self, message: str) -> None:
        self._emit(logging.WARNING, message)

    def error(self, message: str) -> None:
        self._emit(logging.ERROR, message)

    def rate_limited(self, kind: str, message: str) -> None:
        """A warning, at most once per `interval` per `kind`."""
        now = self.clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        self._last[kind] = now
        suppressed = self._suppressed.pop(kind, 0)
        extra = f" ({suppressed} similar suppressed)" if suppressed else ""
        self._emit(logging.WARNING, f"{message}{extra}")
