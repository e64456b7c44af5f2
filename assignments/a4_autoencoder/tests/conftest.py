"""Lets the public checks import `autoencoder` from the assignment folder above this one."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
