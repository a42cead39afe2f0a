"""Configuration: CLI + config.json -> frozen, validated ServerConfig."""
