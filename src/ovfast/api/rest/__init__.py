"""REST transport (aiohttp)."""
