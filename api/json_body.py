"""Reading a JSON request body: the shapes every JSON endpoint checks the same way."""

from flask import request

from trust.errors import InvalidInput


def json_object() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", "请求体必须是 JSON 对象")
    return body


def text(body: dict, name: str, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"'{name}' must be text", f"“{name}”必须是文本")
    return value


def text_list(body: dict, name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"'{name}' is a list of text", f"“{name}”须为文本列表")
    return value
