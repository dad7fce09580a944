"""Key-encryption keys (KEKs): what the software backend wraps private keys under.

Three sources, each naming its KEKs by an id the key rows record:

- a master key file (``file:<check value>``): lines ``<kek id> <64 hex digits>``, mode 0600;
  rotation appends a line, so a rotation whose transaction fails leaves every row readable;
- a passphrase through scrypt (``scrypt:<salt>:<check value>``): the salt is in the id, so
  only the passphrase is secret; rotation draws a new salt;
- an AES-256 key inside a PKCS#11 token (``pkcs11:<object label>``), generated there
  non-extractable: wrapping and unwrapping run inside the token (CKM_AES_GCM).

The check value (the first 8 bytes of SHA-256 over a fixed prefix and the key, as a key
check value) tells a wrong file or passphrase apart from a tampered blob.

A wrapped key is ``nonce (12) ‖ ciphertext ‖ tag (16)``, AES-256-GCM or SM4-GCM (the SM4
key is the first half of SM3 over a fixed prefix and the KEK).
"""

import hashlib
import os
import secrets
import stat
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from trust import sm4
from trust.errors import DecryptionFailed, InvalidInput, KeyUnavailable, UnsupportedAlgorithm
from trust.hashes import sm3

AES_GCM = "AES-256-GCM"
SM4_GCM = "SM4-GCM"
WRAP_CIPHERS = (AES_GCM, SM4_GCM)
KEK_SIZE = 32
NONCE_SIZE = 12
TOKEN_KEK_PREFIX = "trust-kek-"
# scrypt cost: N = 2^15, r = 8 (32 MiB, about 0.1 s), done once per process and salt.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 15, 8, 1


class KEKSource(Protocol):
    source: str  # "file" | "passphrase" | "pkcs11"

    def initial_kek(self) -> str:
        """The KEK to record when the database has none yet."""
    def new_kek(self) -> str:
        """Make a new KEK (a rotation) and return its id."""
    def wrap(self, kek_id: str, cipher: str, plaintext: bytes, aad: bytes) -> bytes: ...
    def unwrap(self, kek_id: str, cipher: str, blob: bytes, aad: bytes) -> bytes: ...
    def check_ready(self, kek_id: str | None) -> None:
        """Raise KeyUnavailable unless the KEK (or, with None, the source) can be used."""


def check_value(key: bytes) -> str:
    return hashlib.sha256(b"trust kek check value\x00" + key).digest()[:8].hex()


def _unwrap_failed(cause: str) -> DecryptionFailed:
    return DecryptionFailed(
        f"a wrapped private key failed its integrity check ({cause}): it was altered in the "
        "database, moved from another row, or wrapped under another KEK",
        f"受保护的私钥完整性校验失败（{cause}）：数据库中的密文被篡改、被移到其他记录，或由其他主密钥保护")


class _KeyBytesKEK:
    """A KEK held in process memory (file, passphrase): wraps with AES-256-GCM or SM4-GCM."""

    def _secret(self, kek_id: str) -> bytes:
        raise NotImplementedError

    def wrap(self, kek_id: str, cipher: str, plaintext: bytes, aad: bytes) -> bytes:
        key, nonce = self._secret(kek_id), secrets.token_bytes(NONCE_SIZE)
        if cipher == AES_GCM:
            return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)
        if cipher == SM4_GCM:
            return nonce + sm4.encrypt_gcm(_sm4_key(key), nonce, plaintext, aad)
        raise UnsupportedAlgorithm(f"unknown key wrapping cipher {cipher!r}", f"未知的密钥保护算法 {cipher!r}")

    def unwrap(self, kek_id: str, cipher: str, blob: bytes, aad: bytes) -> bytes:
        key = self._secret(kek_id)
        if len(blob) < NONCE_SIZE + 16:
            raise _unwrap_failed("too short")
        nonce, body = blob[:NONCE_SIZE], blob[NONCE_SIZE:]
        if cipher == AES_GCM:
            try:
                return AESGCM(key).decrypt(nonce, body, aad)
            except InvalidTag:
                raise _unwrap_failed("AES-GCM tag mismatch") from None
        if cipher == SM4_GCM:
            try:
                return sm4.decrypt_gcm(_sm4_key(key), nonce, body, aad)
            except DecryptionFailed:
                raise _unwrap_failed("SM4-GCM tag mismatch") from None
        raise UnsupportedAlgorithm(f"unknown key wrapping cipher {cipher!r}", f"未知的密钥保护算法 {cipher!r}")

    def check_ready(self, kek_id: str | None) -> None:
        if kek_id is not None:
            self._secret(kek_id)


def _sm4_key(kek: bytes) -> bytes:
    return sm3(b"trust kek sm4\x00" + kek)[:16]


# ---------------------------------------------------------------- master key file

def create_master_key_file(path: str | os.PathLike) -> str:
    """Create a master key file with one fresh KEK, mode 0600; refuse to overwrite one."""
    path = Path(path)
    key = secrets.token_bytes(KEK_SIZE)
    kek_id = f"file:{check_value(key)}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidInput(f"the master key file {path} exists already; it is never overwritten",
                           f"主密钥文件 {path} 已存在，不会被覆盖") from None
    except OSError as e:
        raise KeyUnavailable(f"cannot create the master key file {path}: {e.strerror}",
                             f"无法创建主密钥文件 {path}：{e.strerror}") from None
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)  # explicit: O_CREAT's mode is subject to the umask
        f.write(f"{kek_id} {key.hex()}\n")
        f.flush()
        os.fsync(f.fileno())
    return kek_id


class FileKEK(_KeyBytesKEK):
    source = "file"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._keys: dict[str, bytes] = {}

    def _read(self) -> dict[str, bytes]:
        def unavailable(en: str, zh: str) -> KeyUnavailable:
            return KeyUnavailable(f"master key file {self.path}: {en}", f"主密钥文件 {self.path}：{zh}")

        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as e:
            raise unavailable(f"cannot be opened ({e.strerror})", f"无法打开（{e.strerror}）") from None
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise unavailable("is not a regular file", "不是普通文件")
            if mode & 0o077:
                raise unavailable(f"is open to group or others (mode {stat.S_IMODE(mode):04o}); "
                                  "it must be 0600 (chmod 600)",
                                  f"权限过宽（{stat.S_IMODE(mode):04o}），必须为 0600（chmod 600）")
            try:
                text = os.read(fd, 64 * 1024).decode("ascii")
            except (OSError, UnicodeDecodeError) as e:
                raise unavailable(f"cannot be read ({e})", f"无法读取（{e}）") from None
        finally:
            os.close(fd)
        keys = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            try:
                kek_id, hex_key = line.split()
                key = bytes.fromhex(hex_key)
            except ValueError:
                raise unavailable(f"line {number} is not '<kek id> <hex key>'",
                                  f"第 {number} 行不是“<主密钥标识> <十六进制密钥>”") from None
            if len(key) != KEK_SIZE or kek_id != f"file:{check_value(key)}":
                raise unavailable(f"line {number} is damaged (length or check value wrong)",
                                  f"第 {number} 行已损坏（长度或校验值不符）")
            keys[kek_id] = key
        if not keys:
            raise unavailable("holds no key", "不含任何密钥")
        return keys

    def _secret(self, kek_id: str) -> bytes:
        key = self._keys.get(kek_id)
        if key is None:  # a KEK added by a rotation in another process: read the file again
            self._keys = self._read()
            key = self._keys.get(kek_id)
        if key is None:
            raise KeyUnavailable(
                f"master key file {self.path} does not hold KEK {kek_id} (a different or older file?)",
                f"主密钥文件 {self.path} 中没有主密钥 {kek_id}（文件不对或版本过旧？）")
        return key

    def check_ready(self, kek_id: str | None) -> None:
        self._keys = self._read()
        super().check_ready(kek_id)

    def initial_kek(self) -> str:
        """The file made by create_master_key_file (`trustctl init`): its last key."""
        self._keys = self._read()
        return list(self._keys)[-1]

    def new_kek(self) -> str:
        """Append a fresh KEK to the file, replacing it atomically (temp file, fsync, rename)."""
        keys = self._read() if self.path.exists() else {}
        key = secrets.token_bytes(KEK_SIZE)
        kek_id = f"file:{check_value(key)}"
        keys[kek_id] = key
        temp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.writelines(f"{i} {k.hex()}\n" for i, k in keys.items())
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, self.path)
        self._keys = keys
        return kek_id


# ---------------------------------------------------------------- passphrase

class PassphraseKEK(_KeyBytesKEK):
    source = "passphrase"

    def __init__(self, passphrase: bytes):
        if len(passphrase) < 12:
            raise InvalidInput("the KEK passphrase must be at least 12 bytes", "主密钥口令至少 12 字节")
        self._passphrase = passphrase
        self._keys: dict[str, bytes] = {}

    def _derive(self, salt: bytes) -> bytes:
        return hashlib.scrypt(self._passphrase, salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                              maxmem=64 * 1024 * 1024, dklen=KEK_SIZE)

    def _secret(self, kek_id: str) -> bytes:
        key = self._keys.get(kek_id)
        if key is not None:
            return key
        try:
            kind, salt_hex, expected = kek_id.split(":")
            salt = bytes.fromhex(salt_hex)
        except ValueError:
            kind = None
        if kind != "scrypt":
            raise KeyUnavailable(f"KEK {kek_id} is not a passphrase KEK", f"主密钥 {kek_id} 不是口令派生的主密钥")
        key = self._derive(salt)
        if check_value(key) != expected:
            raise KeyUnavailable(f"the configured passphrase does not give KEK {kek_id} (wrong passphrase)",
                                 f"所配置的口令无法得到主密钥 {kek_id}（口令错误）")
        self._keys[kek_id] = key
        return key

    def new_kek(self) -> str:
        salt = secrets.token_bytes(16)
        key = self._derive(salt)
        kek_id = f"scrypt:{salt.hex()}:{check_value(key)}"
        self._keys[kek_id] = key
        return kek_id

    def initial_kek(self) -> str:
        return self.new_kek()


# ---------------------------------------------------------------- PKCS#11 token

class TokenKEK:
    """An AES-256 key generated inside a PKCS#11 token, sensitive and non-extractable."""

    source = "pkcs11"

    def __init__(self, token):
        self.token = token  # hsm.pkcs11.Token

    def initial_kek(self) -> str:
        return self.new_kek()

    def new_kek(self) -> str:
        label = f"{TOKEN_KEK_PREFIX}{secrets.token_hex(6)}"
        self.token.generate_aes_key(label)
        return f"pkcs11:{label}"

    def _label(self, kek_id: str) -> str:
        if not kek_id.startswith("pkcs11:"):
            raise KeyUnavailable(f"KEK {kek_id} is not held in a PKCS#11 token", f"主密钥 {kek_id} 不在 PKCS#11 设备中")
        return kek_id[len("pkcs11:"):]

    def wrap(self, kek_id: str, cipher: str, plaintext: bytes, aad: bytes) -> bytes:
        _token_cipher(cipher)
        nonce = secrets.token_bytes(NONCE_SIZE)
        return nonce + self.token.aes_gcm(self._label(kek_id), True, nonce, plaintext, aad)

    def unwrap(self, kek_id: str, cipher: str, blob: bytes, aad: bytes) -> bytes:
        _token_cipher(cipher)
        if len(blob) < NONCE_SIZE + 16:
            raise _unwrap_failed("too short")
        try:
            return self.token.aes_gcm(self._label(kek_id), False, blob[:NONCE_SIZE], blob[NONCE_SIZE:], aad)
        except DecryptionFailed:
            raise _unwrap_failed("AES-GCM tag mismatch in the token") from None

    def check_ready(self, kek_id: str | None) -> None:
        self.token.check_ready()
        if kek_id is not None:
            self.token.find_secret_key(self._label(kek_id))


def _token_cipher(cipher: str) -> None:
    if cipher != AES_GCM:
        raise UnsupportedAlgorithm(f"a KEK in a PKCS#11 token wraps with {AES_GCM} only, not {cipher}",
                                   f"PKCS#11 设备中的主密钥只支持 {AES_GCM}，不支持 {cipher}")
