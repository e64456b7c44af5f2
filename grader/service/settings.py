"""Where the service keeps its state and how it reaches the database and the grading cluster."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

DATABASE_FILE = "service.db"
SECRET_FILE = "secret.key"  # noqa: S105 - a file name, not a secret


class ServiceSettings(BaseModel):
    """One service's deployment: its course folder, database, cluster and data; the rules are in course.toml."""

    model_config = ConfigDict(frozen=True)

    course_dir: Path
    database_url: str | None = None
    cluster: str | None = "local"  # None holds grading back: uploads are queued, nothing is dispatched
    device_kind: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when a node of the cluster has a GPU
    data_root: Path | None = None  # the CIFAR-10 root the workers grade with
    https: bool = False  # served behind an HTTPS proxy: cookies are marked Secure

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{(self.course_dir / DATABASE_FILE).resolve()}"

    @property
    def uploads_dir(self) -> Path:
        return self.course_dir / "uploads"

    @property
    def reports_dir(self) -> Path:
        return self.course_dir / "reports"

    @property
    def exports_dir(self) -> Path:
        return self.course_dir / "exports"

    def secret_key(self) -> str:
        """The key that signs session cookies: made once and kept private in the course folder."""
        path = self.course_dir / SECRET_FILE
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(48))
            file.flush()
            os.fsync(file.fileno())
        return path.read_text().strip()
