"""An HTTP proxy between a client and a test server that breaks chosen requests.

A rule sees each request (method, path with query) and answers what to do with it:
pass it on, answer 500 (or 403) without forwarding, forward it and then drop the connection
(the response is lost), stall for a while before forwarding (to trip timeouts), or refuse
it with 403 the way Amazon S3 refuses a bad signature — quoting the request's credentials
back (access key id, session token, signature, the whole canonical request).
The proxy also counts requests, so a test can say how many a client made.
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PASS = "pass"
FAIL = "fail"  # 500 InternalError, request never reaches the server
DENY = "deny"  # 403 AccessDenied, request never reaches the server
DROP = "drop"  # forwarded, then the connection is closed before the response
STALL = "stall"  # wait ``stall_seconds`` before forwarding
REFUSE_QUOTING = "refuse-quoting"  # 403 SignatureDoesNotMatch quoting the request's credentials, as S3 does

Rule = Callable[[str, str], str]
_CREDENTIAL_RE = re.compile(r"Credential=([^/,&]+)")
_SIGNATURE_RE = re.compile(r"Signature=([0-9a-f]+)")


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def signature_mismatch(method: str, path: str, headers: dict[str, str]) -> bytes:
    """The error body S3 sends for a signature it does not accept: it quotes the access key
    id, the signature provided, and the canonical request with every signed header (the
    session token among them) — or, for a presigned URL, the query that carries them."""
    authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    unquoted = path.replace("%2F", "/")
    key_id = _CREDENTIAL_RE.search(authorization) or _CREDENTIAL_RE.search(unquoted)
    signature = _SIGNATURE_RE.search(authorization) or _SIGNATURE_RE.search(unquoted)
    canonical = "\n".join([method, path, *(f"{k.lower()}:{v}" for k, v in sorted(headers.items()))])
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code>'
        "<Message>The request signature we calculated does not match the signature you provided.</Message>"
        f"<AWSAccessKeyId>{_xml(key_id.group(1) if key_id else '')}</AWSAccessKeyId>"
        f"<SignatureProvided>{_xml(signature.group(1) if signature else '')}</SignatureProvided>"
        f"<CanonicalRequest>{_xml(canonical)}</CanonicalRequest><RequestId>4442587FB7D0A2F9</RequestId></Error>"
    ).encode()


@dataclass
class FaultProxy:
    target_port: int
    rule: Rule = lambda _method, _path: PASS
    stall_seconds: float = 5.0
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, action
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                action = proxy.rule(self.command, self.path)
                proxy.requests.append((self.command, self.path, action))  # list.append is atomic
                if action in (FAIL, DENY):
                    code = b"InternalError" if action == FAIL else b"AccessDenied"
                    payload = b"<Error><Code>" + code + b"</Code><Message>injected</Message></Error>"
                    self.send_response(500 if action == FAIL else 403)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if action == REFUSE_QUOTING:
                    payload = signature_mismatch(self.command, self.path, dict(self.headers.items()))
                    self.send_response(403)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                if action == STALL:
                    time.sleep(proxy.stall_seconds)
                conn = http.client.HTTPConnection("127.0.0.1", proxy.target_port, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                conn.close()
                if action == DROP:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length", "keep-alive"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                return  # a client that hangs up on an injected fault is expected

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
