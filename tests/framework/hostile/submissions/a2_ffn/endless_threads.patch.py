"""Heavy: non-daemon threads that never end and an exit hook that never returns, started at import."""

import atexit as _atexit
import threading as _threading
import time as _time


def _forever():
    while True:
        _time.sleep(0.5)


for _ in range(4):
    _threading.Thread(target=_forever).start()
_atexit.register(_time.sleep, 3600)
