"""Heavy: allocates memory without bound at import time (touching every page)."""

_blocks = []
while True:
    _blocks.append(b"\1" * 20_000_000)
