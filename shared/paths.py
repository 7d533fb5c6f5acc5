"""Where tidechat keeps local data (the Redis data dir, the bundled model)."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    """``$TIDECHAT_DATA_DIR``, else the user's data directory (XDG)."""
    explicit = os.environ.get("TIDECHAT_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tidechat"
