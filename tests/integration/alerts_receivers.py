"""Real local receivers for the alert tests: an HTTP server standing in for Slack, Discord and
webhook endpoints (and Apprise's json:// target), and an SMTP relay (aiosmtpd) with STARTTLS
and AUTH behind a self-signed certificate made here."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReceiver:
    """Records every POST; answers ``status`` (changeable while running)."""

    port: int
    status: int = 200
    answer: bytes = b"ok"
    requests: list[Request] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HttpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", str(len(receiver.answer)))
                self.end_headers()
                self.wfile.write(receiver.answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Request]:
        wait_until(lambda: len(self.requests) >= count, timeout, f"{count} request(s) at {self.url}")
        return self.requests


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost and its key, in PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "relay.crt", directory / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes
    login: str | None
    tls: bool


class SmtpRelay:
    """aiosmtpd on a free port: STARTTLS required (or TLS from the start), AUTH required (over TLS), one user."""

    def __init__(self, directory: Path, *, user: str, password: str, implicit_tls: bool = False) -> None:
        self.implicit_tls = implicit_tls  # SMTPS (TLS from the first byte) instead of STARTTLS
        self.cert, self.key = self_signed(directory)
        self.user, self.password = user, password
        self.port = free_port()  # aiosmtpd's Controller(port=0) cannot tell its port
        self.mails: list[Mail] = []
        self.refused_logins = 0
        self._controller: Any = None

    def start(self) -> SmtpRelay:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        relay = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else None
                tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
                relay.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, login, tls))
                return "250 OK"

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            if isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == (
                relay.user,
                relay.password,
            ):
                return AuthResult(success=True, auth_data=data.login)
            relay.refused_logins += 1
            return AuthResult(success=False, handled=False)

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        tls: dict[str, Any] = (
            {"ssl_context": context} if self.implicit_tls else {"tls_context": context, "require_starttls": True}
        )
        self._controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            authenticator=authenticate,
            auth_required=True,
            auth_require_tls=not self.implicit_tls,  # aiosmtpd counts only STARTTLS as TLS here
            **tls,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Mail]:
        wait_until(lambda: len(self.mails) >= count, timeout, f"{count} mail(s) at the SMTP relay")
        return self.mails
