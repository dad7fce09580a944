"""RFC 9285, The Base45 Data Encoding: bytes as text of the 45 characters a QR code's
alphanumeric mode holds (5.5 bits a character against byte mode's 8), as the licence QR's
payload uses it.

Two bytes become three characters (c + 45·d + 45²·e = 256·a + b), a last single byte two.
Decoding is strict: a character outside the alphabet, a group worth more than 65535 (or a
last pair more than 255) or a dangling single character is refused by name.
"""

from trust.errors import InvalidInput

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}


def trim(text: str) -> str:
    """``text`` without what a scanner or a copy adds around it: whitespace before, line ends
    and tabs after. Never a trailing space: a space is Base45's 37th character, and a text
    ending in one (one in 45) stripped of it no longer decodes."""
    return text.lstrip().rstrip("\r\n\t")


def encode(data: bytes) -> str:
    out: list[str] = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        n, c = divmod(n, 45)
        e, d = divmod(n, 45)
        out += (ALPHABET[c], ALPHABET[d], ALPHABET[e])
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        out += (ALPHABET[c], ALPHABET[d])
    return "".join(out)


def decode(text: str) -> bytes:
    if not isinstance(text, str):
        raise InvalidInput("Base45 text must be a string", "Base45 文本必须是字符串")
    if len(text) % 3 == 1:
        raise InvalidInput(f"Base45 text of {len(text)} characters: a group of one character is not valid",
                           f"Base45 文本长度 {len(text)} 无效：不能以单个字符成组")
    try:
        values = [_VALUE[c] for c in text]
    except KeyError as e:
        raise InvalidInput(f"{e.args[0]!r} is not a Base45 character", f"{e.args[0]!r} 不是 Base45 字符") from None
    out = bytearray()
    for i in range(0, len(values), 3):
        group = values[i:i + 3]
        n = sum(v * 45 ** k for k, v in enumerate(group))
        if len(group) == 3:
            if n > 0xFFFF:
                raise InvalidInput(f"the Base45 group at {i} is worth {n}, more than two bytes hold",
                                   f"第 {i} 个字符起的 Base45 组的值 {n} 超过两个字节")
            out += n.to_bytes(2, "big")
        else:
            if n > 0xFF:
                raise InvalidInput(f"the last Base45 pair is worth {n}, more than a byte holds",
                                   f"最后一组 Base45 字符的值 {n} 超过一个字节")
            out.append(n)
    return bytes(out)
