"""Print the requirement lines of pyproject.toml's base dependencies plus the named extras.

Used by the Dockerfile so that an image installs its dependencies (pinned by requirements.lock)
in a layer of their own, before the sources are copied: a code change reinstalls nothing.

    python docker/requirements.py serve features pipeline > /tmp/requirements.txt
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())[
    "project"
]
lines = list(project["dependencies"])
for extra in sys.argv[1:]:
    lines += [r for r in project["optional-dependencies"][extra] if not r.startswith("smp-")]
print("\n".join(lines))
