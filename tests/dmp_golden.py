"""Golden files for the DMP bridge parsers: compare by default, rewrite with MSS_REGEN_GOLDEN=1.

Values are turned into JSON the same way every time: dataclasses become
objects (field order kept), document bytes become their size and SHA-1,
datetimes their ISO form, XdmError its code and both sentences.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

from dmp_bridge.errors import XdmError

GOLDEN = Path(__file__).parent / "golden"


def to_golden(value: Any) -> Any:
    """A JSON-ready rendering of a parser result."""
    if isinstance(value, XdmError):
        return value.as_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_golden(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes):
        return {"size": len(value), "sha1": hashlib.sha1(value).hexdigest()}
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [to_golden(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_golden(v) for k, v in value.items()}
    return value


def assert_golden(relative: str, value: Any) -> None:
    """Compare ``value`` with ``tests/golden/<relative>`` (JSON, or text for .html)."""
    path = GOLDEN / relative
    if relative.endswith(".json"):
        text = json.dumps(to_golden(value), indent=2, ensure_ascii=False) + "\n"
    else:
        text = str(value)
    if os.environ.get("MSS_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path} missing: run once with MSS_REGEN_GOLDEN=1 and review it"
    expected = path.read_text(encoding="utf-8")
    if relative.endswith(".json"):
        assert json.loads(text) == json.loads(expected), f"{relative} differs from its golden file"
    else:
        assert text == expected, f"{relative} differs from its golden file"
