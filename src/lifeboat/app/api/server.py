"""Serving the app with uvicorn on a thread of the daemon, on a socket bound beforehand so a
taken or forbidden address is one clear error at start, not a log line of a dead thread."""

from __future__ import annotations

import socket
import threading
from typing import Any

from lifeboat.errors import LifeboatError


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (raises a one-line LifeboatError)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise LifeboatError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="another process has the port, or the address is not this host's: set daemon.listen or --listen",
        ) from None
    sock.set_inheritable(False)
    return sock


def check_tls(certificate: str, key: str) -> None:
    """Raise a one-line ConfigError unless ``certificate`` and ``key`` load as a server's pair."""
    import ssl

    from lifeboat.errors import ConfigError

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certificate, key)
    except (OSError, ssl.SSLError) as exc:
        why = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise ConfigError(
            f"daemon.tls: cannot load the certificate {certificate} with the key {key}: {why}",
            hint="both PEM files, readable by the daemon's user, the key unencrypted and matching the certificate",
        ) from None


class HttpServer:
    """uvicorn serving ``app`` on ``sock`` in a thread (HTTPS when ``tls`` = (certificate,
    key)); :meth:`stop` ends it."""

    def __init__(self, app: Any, sock: socket.socket, *, tls: tuple[str, str] | None = None) -> None:
        import uvicorn

        self._sock = sock
        if tls is not None:
            check_tls(*tls)
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            ssl_certfile=tls[0] if tls else None,
            ssl_keyfile=tls[1] if tls else None,
            server_header=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def _run(self) -> None:
        self._server.run(sockets=[self._sock])

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()
