"""HTTPS: ``daemon.tls`` serves the API with a certificate and key (here a CA and a server
certificate made with ``cryptography``), checked by a real HTTPS client."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.api.conftest import Api, prepare, serve, write_config


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server.key): a CA and a certificate it signed for 127.0.0.1 and localhost."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Lifeboat test CA"))
        .issuer_name(_name("Lifeboat test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


def make_self_signed(directory: Path) -> tuple[Path, Path]:
    """(cert.pem, key.pem): one certificate for 127.0.0.1, signed by its own key."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(_name("127.0.0.1"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def tls_section(cert: Path, key: Path) -> str:
    return f"  tls:\n    certificate: {cert}\n    key: {key}\n"


def test_the_api_is_served_over_https_with_the_configured_certificate(
    tmp_path: Path, api_factory: Callable[..., Api]
) -> None:
    ca, cert, key = make_certificates(tmp_path / "pki")
    trust = ssl.create_default_context(cafile=str(ca))
    api = api_factory(daemon=tls_section(cert, key), scheme="https", verify=trust)
    assert api.served.logged("daemon started")[0]["tls"] is True
    response = api.client("operator").get("/api/v1/whoami")
    assert response.status_code == 200 and response.json() == {"name": "operator-token", "role": "operator"}
    assert response.url.scheme == "https"
    assert response.headers["strict-transport-security"].startswith("max-age=")
    # TLS 1.2 at least
    old_client = ssl.create_default_context(cafile=str(ca))
    old_client.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # that is the point
        old_client.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{api.base_url}/healthz", verify=old_client, timeout=10)
    # the certificate presented is ours: a client that does not trust our CA refuses it
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{api.base_url}/healthz", timeout=10)
    # plain HTTP to the TLS port gets no answer of the API
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{api.port}/api/v1/whoami", headers={"Authorization": "Bearer x"}, timeout=10)
    # a browser's same-origin state change over https is accepted; another site's refused
    admin = api.client("admin")
    made = admin.post("/api/v1/tokens", json={"name": "tls", "role": "viewer"}, headers={"Origin": api.base_url})
    assert made.status_code == 201, made.text
    refused = admin.post(
        "/api/v1/tokens", json={"name": "x", "role": "viewer"}, headers={"Origin": f"https://localhost:{api.port}"}
    )  # another host name is another site, even for the same address
    assert refused.status_code == 403
    assert api.client("viewer").get("/healthz").status_code == 200


def test_a_self_signed_certificate_serves_clients_that_trust_it(
    tmp_path: Path, api_factory: Callable[..., Api]
) -> None:
    cert, key = make_self_signed(tmp_path / "self")
    api = api_factory(
        daemon=tls_section(cert, key), scheme="https", verify=ssl.create_default_context(cafile=str(cert))
    )
    response = api.client("viewer").get("/api/v1/whoami")
    assert response.status_code == 200 and response.json()["name"] == "viewer-token"
    with pytest.raises(httpx.ConnectError):  # and only them
        httpx.get(f"{api.base_url}/healthz", timeout=10)


def _serve_exit(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "lifeboat", "-c", str(root / "lifeboat.yaml"), "serve", "--listen", "127.0.0.1:0"],
        env={**os.environ, **env},
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_a_certificate_and_key_that_do_not_load_stop_the_daemon_at_start(tmp_path: Path) -> None:
    ca, cert, key = make_certificates(tmp_path / "pki")
    _, other_cert, _ = make_certificates(tmp_path / "other")
    root = tmp_path / "world"
    env = prepare(root)
    for daemon, says in (
        (tls_section(other_cert, key), "cannot load the certificate"),  # a key of another certificate
        (tls_section(cert, tmp_path / "missing.key"), "cannot load the certificate"),
        (tls_section(Path("relative.pem"), key).replace(str(Path("relative.pem")), "relative.pem"), "absolute"),
    ):
        write_config(root, daemon=daemon)
        done = _serve_exit(root, env)
        err = done.stderr.decode()
        assert done.returncode == 2, (daemon, done)
        assert says in err and "hint:" in err and "Traceback" not in err, err
        assert "daemon started" not in done.stdout.decode()
    # nothing was left held (the lock, the port): the good configuration starts
    write_config(root, daemon=tls_section(cert, key))
    api = serve(root, env, scheme="https", verify=ssl.create_default_context(cafile=str(ca)))
    try:
        assert api.client("viewer").get("/api/v1/whoami").status_code == 200
    finally:
        api.stop()
