"""atheris target: config.json parsing and validation (config/load.py parse_config_text), the text a
reload reads from disk.

Contract: any text either yields a RepositoryConfig (bad entries listed in its errors) or raises
ConfigError; any other exception would crash a reload or the server's start, and is a bug.
"""
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from ovfast.config.load import ConfigError, parse_config_text

CONFIG_DIR = Path("/nonexistent-config-dir")


def one(data: bytes) -> None:
    try:
        parse_config_text(data, CONFIG_DIR)
    except ConfigError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one)
    atheris.Fuzz()
