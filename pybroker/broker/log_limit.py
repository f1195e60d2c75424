"""A log line for an event that may repeat thousands of times a second (a refused
connection, a bad frame, a full fd table): the first occurrence is logged, the rest are
counted for ``interval`` seconds, and the next line logged says how many were not."""
from __future__ import annotations

import logging
import time


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, level: int = logging.WARNING, interval: float = 10.0):
        self.logger = logger
        self.level = level
        self.interval = interval
        self.suppressed = 0
        self._next = 0.0

    def __call__(self, message: str, *args) -> None:
        now = time.monotonic()
        if now < self._next:
            self.suppressed += 1
            return
        self._next = now + self.interval
        if self.suppressed:
            message += f" ({self.suppressed} more like it not logged)"
            self.suppressed = 0
        self.logger.log(self.level, message, *args)
