"""docs/api.md keeps up with the API: every operation of /openapi.json has its section, and
every problem code its row."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_operation_and_error_code_is_documented(tmp_path: Path) -> None:
    from aiops.server.api.problems import CODES
    from aiops.server.app import ServerConfig, create_app

    (tmp_path / "functions").mkdir()
    doc = create_app(ServerConfig(project_dir=str(tmp_path))).openapi()
    text = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^### `([A-Z]+) (\S+)`$", text, flags=re.M))
    operations = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert operations - documented == set(), "operations missing from docs/api.md"
    assert documented - operations == set(), "docs/api.md documents operations that are gone"
    rows = dict(re.findall(r"^\| `([a-z-]+)` \| (\d{3}) \|", text, flags=re.M))
    assert rows == {code: str(status) for code, (status, _) in CODES.items()}
