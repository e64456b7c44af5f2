"""Hostile: sys.exit(0) at import, hoping the grader reads a clean exit as success."""

import sys as _sys

_sys.exit(0)
