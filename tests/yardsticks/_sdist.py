"""Download a project's source distribution from the package index, for a yardstick
script (``pip download --no-binary :all: --no-deps``; nothing of it is committed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


class SourceMissing(Exception):
    """pip could not give a source distribution; the message says why, in one line or
    with pip's last words."""


def download_sdist(project: str, version: str, dest: Path, timeout: float = 600) -> Path:
    """The ``.tar.gz`` of ``project==version``, downloaded into ``dest``."""
    command = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
    command += ["--disable-pip-version-check", "-q", "-d", str(dest), f"{project}=={version}"]
    try:
        subprocess.run(command, check=True, timeout=timeout, capture_output=True, text=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        output = getattr(exc, "stderr", "") or ""
        if isinstance(output, bytes):
            output = output.decode(errors="replace")
        raise SourceMissing(
            f"could not download {project} {version}'s sources: {output.strip()[-500:]}"
        ) from None
    archives = sorted(dest.glob("*.tar.gz"))
    if not archives:
        raise SourceMissing(f"pip download gave no source distribution of {project} {version}")
    return archives[0]
