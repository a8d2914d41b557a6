"""One name for the emulator extra everywhere, and install lines that name real extras.

The first release had ``optouts[emulators]`` but ``optouts-azure[emulator]``; a user who
guessed one from the other got pip's warning and no uvicorn.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = [ROOT / "pyproject.toml", *sorted(ROOT.glob("providers/*/pyproject.toml"))]
DOCUMENTS = [
    ROOT / "README.md",
    ROOT / ".ci" / "run",
    *sorted(ROOT.glob("providers/*/README.md")),
]
EXTRA = "emulators"
OLD_NAME = "emulator"


def project(path: Path) -> dict[str, object]:
    with path.open("rb") as handle:
        found: dict[str, object] = tomllib.load(handle)["project"]
    return found


def extras() -> dict[str, set[str]]:
    """Each distribution's extras, by distribution name, and by its folder for ``-e``."""
    found: dict[str, set[str]] = {}
    for path in PROJECTS:
        meta = project(path)
        names = set(meta.get("optional-dependencies", {}))  # type: ignore[call-overload]
        found[str(meta["name"])] = names
        found[str(path.parent.relative_to(ROOT)) if path.parent != ROOT else "."] = names
    return found


@pytest.mark.parametrize("path", PROJECTS, ids=lambda p: str(p.parent.relative_to(ROOT)))
def test_the_emulator_extra_has_one_name(path: Path) -> None:
    offered = project(path).get("optional-dependencies", {})
    assert isinstance(offered, dict)
    pulls_uvicorn = {
        name for name, wants in offered.items() if any("emulators" in w for w in wants)
    } - {"dev", "test"}
    if path.parent == ROOT:
        assert EXTRA in offered
        return
    if not pulls_uvicorn:
        return  # a provider without an emulator
    assert EXTRA in offered, f"{path}: the extra is named {sorted(pulls_uvicorn)}"
    assert pulls_uvicorn <= {EXTRA, OLD_NAME}
    if OLD_NAME in offered:  # the old name, kept working
        assert offered[OLD_NAME] == offered[EXTRA]


INSTALL = re.compile(r"""['"]?([\w./-]+)\[([\w,]+)\]['"]?""")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_install_lines_name_extras_that_exist(document: Path) -> None:
    known = extras()
    for line in document.read_text(encoding="utf-8").splitlines():
        if "pip install" not in line and "-e '" not in line:
            continue
        for target, wanted in INSTALL.findall(line):
            target = target.removeprefix("./")
            if target not in known:
                continue  # a package of someone else's, such as psycopg[binary]
            for extra in wanted.split(","):
                assert extra in known[target], f"{document.name}: {target}[{extra}] in {line!r}"
                assert extra != OLD_NAME, f"{document.name}: the old name in {line!r}"
