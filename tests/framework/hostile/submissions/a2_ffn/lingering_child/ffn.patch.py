"""Heavy: every import starts a detached `sleep` (argv[0] is the test's marker) and leaves it running."""

import subprocess as _subprocess
from pathlib import Path as _Path

_marker = (_Path(__file__).parent / "marker.txt").read_text().strip()
_subprocess.Popen([_marker, "3600"], executable="sleep", start_new_session=True,
                  stdout=_subprocess.DEVNULL, stderr=_subprocess.DEVNULL)
