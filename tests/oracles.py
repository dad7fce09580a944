"""Tools nobody on the team wrote, used to judge our output: the system's OpenSSL 3 CLI."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

STANDARD_ID = "distid:1234567812345678"


def openssl(*args: str | Path, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    exe = shutil.which("openssl")
    if exe is None:
        pytest.fail("the openssl CLI is required as a test oracle (apt-get install openssl)")
    result = subprocess.run([exe, *map(str, args)], input=input, capture_output=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"openssl {' '.join(map(str, args))} failed: {result.stderr.decode(errors='replace')}")
    return result


SHARED = Path(__file__).resolve().parents[2] / "shared"


def shared_file(*parts: str) -> Path:
    """A file of ../shared (spec fixtures, corpus). CI always has it beside the clone."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests expect ../shared beside the repository")
    return path


class OpenSSLTimeStampAuthority:
    """A time-stamp authority nobody here wrote: `openssl ts -reply` behind a loopback HTTP
    server (RFC 3161 over HTTP), with an ECDSA P-256 root and TSA certificate made by
    `openssl req`. ``url`` takes POSTed queries; ``root_pem`` is the root to trust."""

    CONFIG = """[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
serial = {dir}/serial
crypto_device = builtin
signer_digest = sha256
default_policy = 1.2.156.99999.3161.1
digests = sm3, sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
certs = {dir}/root.pem
"""

    def __init__(self, directory: Path):
        import http.server
        import threading

        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        d = directory
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                d / "root.key", "-out", d / "root.pem", "-days", "30", "-subj", "/C=CN/O=Other Province/CN=TSA Root",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", d / "tsa.key",
                "-out", d / "tsa.csr", "-subj", "/C=CN/O=Other Province/CN=Provincial TSA")
        (d / "ext.cnf").write_text("extendedKeyUsage=critical,timeStamping\nkeyUsage=critical,digitalSignature\n"
                                   "basicConstraints=critical,CA:FALSE\n")
        openssl("x509", "-req", "-in", d / "tsa.csr", "-CA", d / "root.pem", "-CAkey", d / "root.key", "-days", "30",
                "-set_serial", "7", "-extfile", d / "ext.cnf", "-out", d / "tsa.pem")
        (d / "serial").write_text("01\n")
        (d / "tsa.cnf").write_text(self.CONFIG.format(dir=d))
        self.root_pem = (d / "root.pem").read_text()
        self.requests = 0
        oracle = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                query = self.rfile.read(min(int(self.headers.get("Content-Length", 0)), 1 << 16))
                oracle.requests += 1
                (d / "q.tsq").write_bytes(query)
                reply = openssl("ts", "-reply", "-config", d / "tsa.cnf", "-queryfile", d / "q.tsq", "-signer",
                                d / "tsa.pem", "-inkey", d / "tsa.key", "-out", d / "r.tsr", check=False)
                body = (d / "r.tsr").read_bytes() if reply.returncode == 0 else b""
                self.send_response(200 if body else 500)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tsa"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def ofdrw_verify(*paths: Path, certs: tuple[Path, ...] = ()) -> list[dict]:
    """The verdict of ofdrw (the reference Java OFD library) on each signature of the OFD files,
    in order: digests, Seal.esl against the seal inside SignedValue.dat, and the signed value
    (``certs``: signer certificates for bare SM2 values). One JVM for all the files. Without
    Java the test is skipped, except under CI=true, where it fails."""
    import json
    java = shutil.which("java")
    if java is None:
        message = "a Java runtime is required for ofdrw-verify (apt-get install default-jre-headless)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    jar = shared_file("tools", "ofdrw-verify", "ofdrw-verify.jar")
    options = [str(item) for cert in certs for item in ("--cert", cert)]
    result = subprocess.run([java, "-jar", str(jar), *options, *map(str, paths)], capture_output=True, timeout=300)
    lines = [json.loads(line) for line in result.stdout.decode().splitlines() if line.startswith("{")]
    if not lines:
        raise AssertionError(f"ofdrw-verify printed no verdict: {result.stderr.decode(errors='replace')[:2000]}")
    return lines


def nss_database(folder: Path, roots: tuple[bytes, ...], crls: tuple[bytes, ...] = ()) -> Path:
    """An NSS database (what pdfsig's -nssdir reads) trusting ``roots`` (DER) as CAs, with
    ``crls`` (DER) imported, made by NSS's own certutil and crlutil. Without them the test is
    skipped, except under CI=true, where it fails."""
    certutil, crlutil = shutil.which("certutil"), shutil.which("crlutil")
    if certutil is None or crlutil is None:
        message = "NSS's certutil and crlutil are required (apt-get install libnss3-tools)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([certutil, "-N", "-d", f"sql:{folder}", "--empty-password"], check=True, capture_output=True,
                   timeout=60)
    for index, der in enumerate(roots):
        (folder / f"root{index}.der").write_bytes(der)
        subprocess.run([certutil, "-A", "-d", f"sql:{folder}", "-n", f"root{index}", "-t", "C,C,C",
                        "-i", str(folder / f"root{index}.der")], check=True, capture_output=True, timeout=60)
    for index, der in enumerate(crls):
        (folder / f"crl{index}.der").write_bytes(der)
        subprocess.run([crlutil, "-I", "-d", f"sql:{folder}", "-i", str(folder / f"crl{index}.der"), "-B"],
                       check=True, capture_output=True, timeout=60)
    return folder
