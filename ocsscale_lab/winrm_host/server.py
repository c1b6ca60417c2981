"""HTTP(S) at /wsman: Basic and NTLM authentication and WinRM message encryption.

NTLM authenticates the TCP connection (as IIS/HTTP.sys do): the handshake's
three legs run on one keep-alive connection and later requests on it carry no
Authorization header. The server side is pyspnego, which checks the
client's answer against the NTLM_USER_FILE credential store. Over HTTPS the
server also checks the client's channel binding (the hash of this server's
certificate), as Windows does with CBT hardening.

Once authenticated with NTLM, a request of type `multipart/encrypted;
protocol="application/HTTP-SPNEGO-session-encrypted"` is unsealed and its
answer sealed, the reverse of pywinrm's winrm/encryption.py ([MS-WSMV]
2.2.9.1.1). Over plain HTTP an unencrypted SOAP body is refused unless
`allow_unencrypted` (WinRM's AllowUnencrypted=false default).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import socket
import ssl
import struct
import sys
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import spnego
import spnego.exceptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from spnego.channel_bindings import GssChannelBindings

from .wsman import WsmanService

BOUNDARY = b"--Encrypted Boundary"
SPNEGO_ENCRYPTED = "application/HTTP-SPNEGO-session-encrypted"
ENCRYPTED_CONTENT_TYPE = (
    f'multipart/encrypted;protocol="{SPNEGO_ENCRYPTED}";boundary="Encrypted Boundary"'
)
SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
NTLMSSP = b"NTLMSSP\x00"


@dataclass(frozen=True)
class User:
    domain: str
    name: str
    password: str

    @property
    def principal(self) -> str:
        return f"{self.domain}\\{self.name}" if self.domain else self.name


def load_users(path: Path) -> list[User]:
    """DOMAIN:USER:PASSWORD lines (the format pyspnego's NTLM_USER_FILE store reads)."""
    users = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        domain, name, password = line.split(":", 2)
        users.append(User(domain, name, password))
    return users


def basic_user(users: list[User], username: str, password: str) -> User | None:
    domain, _, name = username.rpartition("\\")
    for user in users:
        same_name = user.name.lower() == name.lower() and user.domain.lower() == domain.lower()
        if same_name and hmac.compare_digest(user.password.encode(), password.encode()):
            return user
    return None


def certificate_binding(cert_file: Path) -> GssChannelBindings:
    """tls-server-end-point binding (RFC 5929) for this server's certificate."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    algorithm = cert.signature_hash_algorithm
    if algorithm is None or algorithm.name in ("md5", "sha1"):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(cert.public_bytes(Encoding.DER))
    return GssChannelBindings(application_data=b"tls-server-end-point:" + digest.finalize())


class StandInServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        service: WsmanService | None,
        users: list[User],
        auth_methods: frozenset[str],
        tls: ssl.SSLContext | None = None,
        channel_binding: GssChannelBindings | None = None,
        allow_unencrypted: bool = False,
    ) -> None:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, WsmanHandler)
        self.service = service
        self.users = users
        self.auth_methods = auth_methods
        self.tls = tls
        self.channel_binding = channel_binding
        self.allow_unencrypted = allow_unencrypted

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        # The handler writes the headers, then the body: with Nagle's algorithm the
        # body waited for the client's delayed ACK (40 ms per request), where
        # Windows' http.sys answers at once.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            # The handshake runs in the connection's thread, so one slow or refusing
            # client cannot stall the accept loop.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr


class WsmanHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    server: StandInServer

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(30)
            self.request.do_handshake()
        super().setup()
        self._ntlm: spnego.ContextProxy | None = None
        self._ntlm_user: str | None = None

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError):
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # no headers: they hold credentials
        sys.stderr.write(f"winrm-standin {self.address_string()} {format % args}\n")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        if self.path.split("?", 1)[0].lower() != "/wsman":
            return self._reply(404, b"", "text/plain")
        user = self._authenticate()
        if user is None:
            return
        content_type = self.headers.get("Content-Type", "")
        encrypted = "multipart/encrypted" in content_type
        if encrypted:
            if self._ntlm is None or SPNEGO_ENCRYPTED not in content_type:
                return self._reply(400, b"encryption needs an NTLM session", "text/plain")
            try:
                body = self._unseal(body)
            except (ValueError, struct.error, spnego.exceptions.SpnegoError):
                return self._reply(400, b"cannot decrypt the message", "text/plain")
        elif body and self.server.tls is None and not self.server.allow_unencrypted:
            return self._reply(401, b"unencrypted messages are not allowed over HTTP", "text/plain")
        if not body:  # the empty POST clients send to finish authentication
            return self._reply(200, b"", SOAP_CONTENT_TYPE)
        assert self.server.service is not None
        status, answer = self.server.service.handle(body, user)
        if encrypted:
            self._reply(status, self._seal(answer), ENCRYPTED_CONTENT_TYPE)
        else:
            self._reply(status, answer, SOAP_CONTENT_TYPE)

    # -- authentication -------------------------------------------------------------

    def _authenticate(self) -> str | None:
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic" and "basic" in self.server.auth_methods:
            return self._basic(value)
        if scheme.lower() in ("negotiate", "ntlm") and "ntlm" in self.server.auth_methods:
            return self._ntlm_step(scheme, value)
        if self._ntlm_user is not None and not header:
            return self._ntlm_user
        self._challenge()
        return None

    def _basic(self, value: str) -> str | None:
        try:
            username, _, password = base64.b64decode(value).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            username, password = "", ""
        user = basic_user(self.server.users, username, password)
        if user is None:
            self._challenge()
            return None
        return user.principal

    def _ntlm_step(self, scheme: str, value: str) -> str | None:
        try:
            token = base64.b64decode(value)
        except binascii.Error:
            token = b""
        if not token.startswith(NTLMSSP) or len(token) < 12:
            self._challenge()  # SPNEGO-wrapped Kerberos is not spoken here
            return None
        message_type = struct.unpack("<I", token[8:12])[0]
        try:
            if message_type == 1:
                self._ntlm, self._ntlm_user = self._new_ntlm_context(), None
                challenge = self._ntlm.step(token) or b""
                self._reply(
                    401, b"", "text/plain", [("WWW-Authenticate", f"{scheme} {_b64(challenge)}")]
                )
                return None
            if message_type == 3 and self._ntlm is not None and not self._ntlm.complete:
                self._ntlm.step(token)
                if self._ntlm.complete:
                    self._ntlm_user = str(self._ntlm.client_principal or "")
                    return self._ntlm_user
        except spnego.exceptions.SpnegoError:
            pass  # wrong password, bad binding: fall through to a fresh challenge
        self._ntlm, self._ntlm_user = None, None
        self._challenge()
        return None

    def _new_ntlm_context(self) -> spnego.ContextProxy:
        return spnego.server(
            protocol="ntlm", service="HTTP", channel_bindings=self.server.channel_binding
        )

    def _challenge(self) -> None:
        headers = []
        if "ntlm" in self.server.auth_methods:
            headers.append(("WWW-Authenticate", "Negotiate"))
        if "basic" in self.server.auth_methods:
            headers.append(("WWW-Authenticate", 'Basic realm="WSMAN"'))
        self._reply(401, b"", "text/plain", headers)

    # -- message encryption ([MS-WSMV] 2.2.9.1.1) ---------------------------------------

    def _unseal(self, body: bytes) -> bytes:
        assert self._ntlm is not None
        parts = [p for p in body.split(BOUNDARY + b"\r\n") if p]
        if len(parts) != 2:
            raise ValueError("expected one encrypted part")
        length = re.search(rb"Length=(\d+)", parts[0])
        if length is None:
            raise ValueError("no original length")
        payload = parts[1].removesuffix(BOUNDARY + b"--\r\n")
        payload = payload.removeprefix(b"\tContent-Type: application/octet-stream\r\n")
        # <signature length><signature><sealed data>: pyspnego unwraps signature + data.
        if struct.unpack("<I", payload[:4])[0] != 16:
            raise ValueError("unexpected NTLM signature length")
        message = self._ntlm.unwrap(payload[4:]).data
        if len(message) != int(length.group(1)):
            raise ValueError("decrypted length does not match")
        return message

    def _seal(self, message: bytes) -> bytes:
        assert self._ntlm is not None
        wrapped = self._ntlm.wrap(message, encrypt=True).data
        signature, sealed = wrapped[:16], wrapped[16:]
        return (
            BOUNDARY + b"\r\n"
            b"\tContent-Type: " + SPNEGO_ENCRYPTED.encode() + b"\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
            + str(len(message)).encode()
            + b"\r\n"
            + BOUNDARY
            + b"\r\n\tContent-Type: application/octet-stream\r\n"
            + struct.pack("<I", len(signature))
            + signature
            + sealed
            + BOUNDARY
            + b"--\r\n"
        )

    def _reply(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.send_response(status)
        for name, value in headers or []:
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
