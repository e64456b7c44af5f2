"""Heavy: an infinite loop at import time."""

while True:
    pass
