"""Print a pip constraints file that pins every dependency of pyproject.toml (the runtime ones
and every extra's) to the lower bound it declares: `name>=X` becomes `name==X`.

`.ci/run` installs the project with these constraints into a second virtualenv and runs the
suite there, so that each bound names the oldest release that really works. A bound that
names no existing release makes that install fail, which is the point.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement


def lowest_pins(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    pins: dict[str, str] = {}
    for line in requirements:
        req = Requirement(line)
        if req.name == project["name"]:  # an extra that pulls in other extras
            continue
        lower = [s.version for s in req.specifier if s.operator == ">="]
        if not lower:
            raise SystemExit(f"{pyproject}: `{line}` declares no lower bound (>=)")
        pins[req.name] = f"{req.name}=={lower[0]}"
    return sorted(pins.values())


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
    print("\n".join(lowest_pins(root / "pyproject.toml")))
