"""Reading what a request sends: the one JSON body reader and the one integer parameter
parser every endpoint uses, so that every decoding problem is a 400 naming what is wrong
(problem+json, our words, never a library's), whatever the route.

The body is parsed once per request and refused when it is not UTF-8 JSON, nests deeper
than ``MAX_DEPTH``, repeats a member, holds NaN or Infinity, or has a string with a NUL or
an unpaired surrogate anywhere (such text would end up in the audit log, a file name or a
certificate). Integers in query strings are ASCII digits only, within a range per field.
"""

import json
from datetime import datetime
from typing import Literal, overload

from flask import g, request

from trust.clock import parse_aware
from trust.errors import InvalidInput

MAX_DEPTH = 32            # deeper than any body of this API; stops RecursionError long before
MAX_INT_DIGITS = 18


def _depth_ok(text: str) -> bool:
    """Whether brackets outside strings nest at most MAX_DEPTH deep (checked before parsing)."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif char in "]}":
            depth -= 1
    return True


def _no_repeats(pairs: list) -> dict:
    found = {}
    for key, value in pairs:
        if key in found:
            raise InvalidInput(f"'{_shown(key)}' appears twice in the body", f"请求体中“{_shown(key)}”重复出现")
        found[key] = value
    return found


def _constant(name: str):
    raise InvalidInput(f"{name} is not a number JSON allows", f"{name} 不是 JSON 允许的数值")


def _shown(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")[:60]


def check_text(value: str, name: str) -> str:
    """``value``, if it holds no NUL and no unpaired surrogate."""
    if "\x00" in value:
        raise InvalidInput(f"'{name}' contains a NUL character", f"“{name}”含有 NUL 字符")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"'{name}' contains an unpaired surrogate (not Unicode text)",
                           f"“{name}”含有不成对的代理字符，不是合法的 Unicode 文本") from None
    return value


def _check_strings(value, path: str) -> None:
    if isinstance(value, str):
        check_text(value, path)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, f"{path}.{_shown(key)}" if path else _shown(key))
            _check_strings(item, f"{path}.{_shown(key)}" if path else _shown(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_strings(item, f"{path}[{index}]")


def json_body():
    """The request's JSON body, checked as the module docstring says (parsed once)."""
    if "json_body" in g:
        return g.json_body
    if not request.is_json:
        raise InvalidInput("the body must be JSON (Content-Type: application/json)",
                           "请求体须为 JSON（Content-Type: application/json）")
    try:
        text = request.get_data(cache=True).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the body is not UTF-8 text", "请求体不是 UTF-8 文本") from None
    if not _depth_ok(text):
        raise InvalidInput(f"the JSON body nests deeper than {MAX_DEPTH} levels", f"JSON 请求体嵌套超过 {MAX_DEPTH} 层")
    try:
        body = json.loads(text, object_pairs_hook=_no_repeats, parse_constant=_constant)
    except (ValueError, RecursionError) as e:
        where = f" (line {e.lineno}, column {e.colno})" if isinstance(e, json.JSONDecodeError) else ""
        raise InvalidInput(f"the body is not valid JSON{where}", f"请求体不是有效的 JSON{where}") from None
    _check_strings(body, "")
    g.json_body = body
    return body


def json_object() -> dict:
    body = json_body()
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", "请求体必须是 JSON 对象")
    return body


@overload
def text(body: dict, name: str, required: Literal[True] = True) -> str: ...


@overload
def text(body: dict, name: str, required: bool) -> str | None: ...


def text(body: dict, name: str, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"'{name}' must be text", f"“{name}”必须是文本")
    return value


def time_value(body: dict, name: str) -> datetime:
    """An RFC 3339 time with its offset (``2027-01-31T16:00:00Z``), as an aware datetime."""
    when = parse_aware(text(body, name))
    if when is None:
        raise InvalidInput(f"'{name}' is an RFC 3339 time with its offset, e.g. 2027-01-31T16:00:00Z",
                           f"“{name}”须为带时区的 RFC 3339 时间，如 2027-01-31T16:00:00Z")
    return when


def text_list(body: dict, name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"'{name}' is a list of text", f"“{name}”须为文本列表")
    return value


def query_int(name: str, default: int, *, low: int = 0, high: int = 10 ** 9) -> int:
    """An integer query parameter: ASCII digits only (not ² or ٣), given at most once,
    from ``low`` to ``high``."""
    values = request.args.getlist(name)
    if not values:
        return default
    if len(values) > 1:
        raise InvalidInput(f"'{name}' is given more than once", f"“{name}”重复给出")
    value = values[0]
    if not value.isascii() or not value.isdigit() or len(value) > MAX_INT_DIGITS or not low <= int(value) <= high:
        raise InvalidInput(f"'{name}' is a whole number from {low} to {high}", f"“{name}”须为 {low} 至 {high} 的整数")
    return int(value)


def query_text(name: str) -> str | None:
    """A text query parameter, given at most once, with no NUL or unpaired surrogate."""
    values = request.args.getlist(name)
    if len(values) > 1:
        raise InvalidInput(f"'{name}' is given more than once", f"“{name}”重复给出")
    return check_text(values[0], name) if values else None
