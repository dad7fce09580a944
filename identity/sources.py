"""Identity sources: where a real-name claim is checked (实名核验) to raise a subject to L2.

A source is anything with ``check_person`` and ``check_legal_person``; the public
security or market regulation registries would be adapters behind this protocol. The
one shipped, :class:`LocalRegistrySource`, reads a JSON file so the demo works offline::

    {"persons": [{"name": "张三", "resident_id": "110105..."}],
     "legal_persons": [{"name": "某某有限公司", "uscc": "91110000..."}]}

The configured source is ``TRUST_IDENTITY_REGISTRY`` (a path), else
``TRUST_HOME/identity-registry.json`` when that file exists, else none.
"""

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from trust.clock import utc_now
from trust.errors import InvalidInput, StorageError
from trust.ids import validate_resident_id, validate_uscc

MAX_REGISTRY_BYTES = 4 * 1024 * 1024
REGISTRY_FILE = "identity-registry.json"


@dataclass(frozen=True)
class Assurance:
    level: str  # "L2" or "L3"
    source: str  # names the source, e.g. "local-registry:identity-registry.json"
    checked_at: datetime


class IdentitySource(Protocol):
    def check_person(self, name: str, resident_id: str) -> Assurance | None: ...
    def check_legal_person(self, name: str, uscc: str) -> Assurance | None: ...


class LocalRegistrySource:
    """Confirms a name and identifier found together in a local JSON registry (read at
    each check, so edits apply at once). A match gives L2."""

    def __init__(self, path: Path, clock: Callable[[], datetime] = utc_now):
        self.path, self.clock = Path(path), clock
        self.name = f"local-registry:{self.path.name}"

    def check_person(self, name: str, resident_id: str) -> Assurance | None:
        number = validate_resident_id(resident_id).number
        return self._check("persons", "resident_id", name, number, lambda v: validate_resident_id(v).number)

    def check_legal_person(self, name: str, uscc: str) -> Assurance | None:
        return self._check("legal_persons", "uscc", name, validate_uscc(uscc), validate_uscc)

    def _check(self, section: str, field: str, name: str, identifier: str, normalise) -> Assurance | None:
        for entry in self._entries(section):
            if not isinstance(entry, dict) or not isinstance(entry.get(field), str):
                raise self._malformed(f"every entry of {section} has a text {field}")
            try:
                same = normalise(entry[field]) == identifier
            except InvalidInput:
                continue  # an invalid identifier in the registry confirms nobody
            if same and entry.get("name") == name:
                return Assurance("L2", self.name, self.clock())
        return None

    def _entries(self, section: str) -> list:
        try:
            with self.path.open("rb") as f:
                data = f.read(MAX_REGISTRY_BYTES + 1)
        except OSError as e:
            raise StorageError(f"the identity registry {self.path} cannot be read ({e.strerror})",
                               f"无法读取身份核验登记文件 {self.path}（{e.strerror}）") from None
        if len(data) > MAX_REGISTRY_BYTES:
            raise self._malformed(f"larger than {MAX_REGISTRY_BYTES} bytes")
        try:
            registry = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise self._malformed(f"not UTF-8 JSON ({type(e).__name__})") from None
        entries = registry.get(section, []) if isinstance(registry, dict) else None
        if not isinstance(entries, list):
            raise self._malformed(f"{section} is a list")
        return entries

    def _malformed(self, why: str) -> InvalidInput:
        return InvalidInput(f"the identity registry {self.path} is malformed: {why}",
                            f"身份核验登记文件 {self.path} 格式错误：{why}")


def configured_source(environ=None) -> IdentitySource | None:
    env = os.environ if environ is None else environ
    if env.get("TRUST_IDENTITY_REGISTRY"):
        return LocalRegistrySource(Path(env["TRUST_IDENTITY_REGISTRY"]))
    default = Path(env.get("TRUST_HOME", "var")).resolve() / REGISTRY_FILE
    return LocalRegistrySource(default) if default.is_file() else None
