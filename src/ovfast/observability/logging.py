"""OVMS-like log lines: [time][pid][logger][level] message."""
from __future__ import annotations

import logging
import sys

LEVELS = {"TRACE": 5, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING,
          "ERROR": logging.ERROR}
logging.addLevelName(5, "TRACE")


def setup_logging(level: str = "INFO", path: str | None = None) -> None:
    fmt = logging.Formatter("[%(asctime)s.%(msecs)03d][%(process)d][%(name)s][%(levelname)s] %(message)s",
                            "%Y-%m-%d %H:%M:%S")
    handler: logging.Handler = logging.FileHandler(path) if path else logging.StreamHandler(sys.stderr)
    handler.setFormatter(fmt)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    # Keep third-party chatter at WARNING unless tracing.
    for noisy in ("aiohttp.access", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING if LEVELS[level] > 5 else LEVELS[level])
