"""`python -m bench`: the benchmarks, in a process that computes on the CPU as the grader's stages do.

Torch reads its thread and kernel settings when it is imported, so this process starts again with the stages'
settings (`grader.sandbox.cpu_environment`) before anything imports torch: the in-process loops the harness
benchmark compares with the sandboxed stage then use the same threads, spinning and kernels.
"""

import os
import sys

from grader.config import load_assignment
from grader.sandbox import cpu_environment

limits = load_assignment("a2_ffn").limits
wanted = cpu_environment(limits.threads, limits.cpu_kernels)
if any(os.environ.get(name) != value for name, value in wanted.items()):
    os.execve(sys.executable, [sys.executable, "-m", "bench", *sys.argv[1:]], os.environ | wanted)

from bench.run import main  # noqa: E402 - torch is imported only now, with the settings above

main()
