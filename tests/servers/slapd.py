"""A throw-away OpenLDAP slapd for the ldap source's tests (research/test-servers.md §3).

Its own ``cn=config`` directory (``-F``) and mdb data directory in a temporary directory owned
by ``srvtest``, who runs slapd, slapadd and slapcat; a free port; ready once ``ldapsearch``
answers. slapd stays in the foreground (``-d stats``, which also logs fatal errors) so the
process started is slapd itself, stopped by its PID. A missing slapd fails the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers.process import SETUP_HINT, free_port

USER = "srvtest"
SUFFIX = "dc=example,dc=org"
ADMIN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "secret-admin-pw"  # a test server's fixed credential
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LDAPNOINIT": "1"}
AS_USER = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups"]

CONFIG = """\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {base}/slapd.pid

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {suffix}
olcRootDN: {admin}
olcRootPW: {hash}
olcDbDirectory: {base}/data
olcAccess: {{0}}to * by * read
"""


def _tool(name: str) -> str:
    for directory in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if os.access(os.path.join(directory, name), os.X_OK):
            return os.path.join(directory, name)
    pytest.fail(f"{name} is not installed (Debian: slapd, ldap-utils); {SETUP_HINT}", pytrace=False)


def _as_user(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*AS_USER, *argv], env=ENV, capture_output=True, check=False, **kwargs)  # type: ignore[call-overload,no-any-return]


@dataclass
class Slapd:
    """A slapd whose configuration is ``config_dir`` and whose one database (1) is ``data_dir``."""

    base: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def config_dir(self) -> Path:
        return self.base / "slapd.d"

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def pid_file(self) -> Path:
        return self.base / "slapd.pid"

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}/"

    @classmethod
    def create(cls) -> Slapd:
        base = Path(tempfile.mkdtemp(prefix="lifeboat-slapd-", dir="/tmp"))
        shutil.chown(base, USER, USER)
        server = cls(base, port=free_port())
        hashed = (
            subprocess.run([_tool("slappasswd"), "-s", ADMIN_PASSWORD], capture_output=True, check=True, env=ENV)
            .stdout.decode()
            .strip()
        )
        config = base / "config.ldif"
        config.write_text(CONFIG.format(base=base, suffix=SUFFIX, admin=ADMIN, hash=hashed))
        shutil.chown(config, USER, USER)
        for directory in (server.config_dir, server.data_dir):
            directory.mkdir()
            shutil.chown(directory, USER, USER)
        made = _as_user([_tool("slapadd"), "-n", "0", "-F", str(server.config_dir), "-l", str(config)])
        if made.returncode != 0:
            pytest.fail(f"slapadd of the test configuration failed: {made.stderr.decode()}", pytrace=False)
        return server

    def start(self) -> None:
        log = self.base / f"slapd-{len(self.logs)}.log"
        self.logs.append(log)
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [_tool("slapd"), "-F", str(self.config_dir), "-h", self.url, "-d", "stats"],
                user=USER,
                group=USER,
                extra_groups=[],
                cwd=self.base,
                env=ENV,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"slapd exited ({self.process.returncode}) at start-up:\n{log.read_text()[-3000:]}")
            probe = subprocess.run(
                [_tool("ldapsearch"), "-x", "-H", self.url, "-s", "base", "-b", "", "namingContexts"],
                capture_output=True,
                env=ENV,
                check=False,
            )
            if probe.returncode == 0 and self.pid_file.exists():
                return
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"slapd did not answer within 30s:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(30)
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def add(self, ldif: str) -> None:
        done = subprocess.run(
            [_tool("ldapadd"), "-x", "-H", self.url, "-D", ADMIN, "-y", str(self._password_file())],
            input=ldif.encode(),
            capture_output=True,
            env=ENV,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()

    def search(self) -> list[str]:
        """Every entry below the suffix with its attributes, as sorted lines (the comparison a user makes)."""
        done = subprocess.run(
            [_tool("ldapsearch"), "-x", "-LLL", "-o", "ldif-wrap=no", "-H", self.url, "-b", SUFFIX, "*", "+"],
            capture_output=True,
            env=ENV,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        return sorted(line for line in done.stdout.decode().splitlines() if line.strip())

    def _password_file(self) -> Path:
        path = self.base / "admin.pw"
        if not path.exists():
            path.write_text(ADMIN_PASSWORD)
            path.chmod(0o600)
        return path

    def remove(self) -> None:
        """Stop it and remove its databases; its logs stay in ``base``."""
        self.stop()
        for directory in (self.config_dir, self.data_dir):
            shutil.rmtree(directory, ignore_errors=True)


def people(count: int, start: int = 0) -> str:
    """The suffix's entry (when ``start`` is 0) and ``count`` inetOrgPerson entries."""
    parts = (
        [] if start else [f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n"]
    )
    parts.append(f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n" if not start else "")
    for i in range(start, start + count):
        parts.append(
            f"dn: uid=user{i},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: user{i}\ncn: User {i}\n"
            f"sn: Number{i}\nmail: user{i}@example.org\ndescription: caf\u00e9 n\u00b0{i}\n"
        )
    return "\n".join(p for p in parts if p)


@pytest.fixture(scope="session")
def slapd() -> Iterator[Slapd]:
    """One slapd for the session (started, holding the suffix and 50 people); tests that stop,
    wipe or restore it leave it running with the same entries."""
    server = Slapd.create()
    server.start()
    server.add(people(50))
    try:
        yield server
    finally:
        server.remove()
