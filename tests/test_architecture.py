"""The imports between packages follow ../shared/ARCHITECTURE.md's arrows, read from the
source with ast (imports inside functions count too). One deliberate change: ofd/ may
import seal/, because verifying an OFD Seal signature is verifying its SES_Signature;
seal/ stays OFD-unaware (the zip and XML safety both use lives in trust.archive)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {
    "trust": set(),
    "hsm": {"trust"},
    "ca": {"hsm", "trust"},
    "seal": {"ca", "hsm", "trust"},
    "ofd": {"seal", "trust"},
    "licence": {"ofd", "seal", "ca", "hsm", "trust"},
    "identity": {"hsm", "trust"},
    "api": {"trust", "hsm", "ca", "seal", "ofd", "licence", "identity"},
}


def _imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_follow_the_arrows(package):
    crossings = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        wrong = _imported_packages(path) - ALLOWED[package] - {package}
        if wrong:
            crossings[str(path.relative_to(ROOT))] = sorted(wrong)
    assert crossings == {}
