"""Reading a JSON mapping another stage wrote, with a one-line error when it is damaged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from epamnet.errors import file_error


def read_json_mapping(path: str | Path, *, fix: str = "rerun the stage that wrote it") -> dict[str, Any] | None:
    """The JSON object in ``path``; None when there is no such file. ``fix`` ends the errors."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise file_error(path, f"not valid JSON ({exc})", fix) from None
    if not isinstance(data, dict):
        raise file_error(path, "is not a JSON mapping", fix)
    return data
