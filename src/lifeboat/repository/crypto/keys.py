"""The master key and the key files that wrap it.

A repository has one random 32-byte master key. Every secret the format uses is derived
from it with BLAKE3's key-derivation mode under a fixed context string, so no two uses
share a key. Key files (``keys/<id>``) wrap the master key under a key-encryption key
derived from a passphrase with a memory-hard KDF (Argon2id by default, or scrypt);
several key files may wrap the same master key, so passphrases can be added, changed and
removed without re-encrypting any data.

AES-GCM cannot tell a wrong passphrase from a damaged wrapped key: both fail to
authenticate. So a key file also carries a checksum (unkeyed BLAKE3) over its fields,
which anyone can check without the passphrase: a key file whose checksum does not match is
damaged, and one whose checksum matches but does not open was given the wrong passphrase.
Key files written before the checksum existed are still read; their damage stays
indistinguishable from a wrong passphrase (:attr:`KeyFile.checksummed` is False).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import blake3

from lifeboat.core.tokens import token_bytes, token_hex
from lifeboat.errors import DamagedKey, IntegrityError, PassphraseError, UnsupportedFormat

MASTER_KEY_BYTES = 32
KEY_FILE_VERSION = 1
_WRAP_AAD = b"lifeboat-key-v1"
CHECKSUM_FIELD = "checksum"

KdfAlgorithm = Literal["argon2id", "scrypt"]

# Upper bounds on KDF parameters read from a key file: a hostile key file must not make
# us allocate terabytes or spin for hours.
_MAX_MEMORY_KIB = 4 * 1024 * 1024
_MAX_TIME_COST = 64
_MAX_PARALLELISM = 64
_MAX_SCRYPT_LOG_N = 24


def _derive(master: bytes, context: str) -> bytes:
    return blake3.blake3(master, derive_key_context=f"lifeboat 2026 v1 {context}").digest(32)


@dataclass(frozen=True, repr=False)
class MasterKey:
    """The repository's root secret and the sub-keys derived from it."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != MASTER_KEY_BYTES:
            raise ValueError("master key must be 32 bytes")

    def __repr__(self) -> str:
        return "MasterKey(<secret>)"

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(token_bytes(MASTER_KEY_BYTES))

    @property
    def blob_id_key(self) -> bytes:
        """Key of the keyed BLAKE3 that names blobs by their content."""
        return _derive(self.raw, "blob id")

    @property
    def encryption_root(self) -> bytes:
        """Root from which every per-pack and per-object AEAD key is derived."""
        return _derive(self.raw, "encryption")

    @property
    def header_mac_key(self) -> bytes:
        """Key of the MAC that protects the plaintext format header."""
        return _derive(self.raw, "header mac")

    @property
    def chunker_seed(self) -> int:
        """Seed of the content-defined chunker's gear table (keyed chunking)."""
        # pyfastcdc shifts the seed left once inside a 64-bit integer: keep it to 62 bits.
        return (int.from_bytes(_derive(self.raw, "chunker seed")[:8], "little") >> 2) or 1


@dataclass(frozen=True)
class KdfParams:
    """A memory-hard KDF and its cost parameters.

    The defaults are chosen for a backup tool's whole-process memory budget (64 MiB for
    ``backup`` and ``restore``): the KDF's memory is held while the repository opens, on top
    of the interpreter's ~36 MiB. Argon2id with 19 MiB is OWASP's recommended minimum at 2
    passes; 4 passes double the attacker's time-memory cost for ~50 ms here. RFC 9106's
    64 MiB profile (3 passes) stays one ``init --kdf-memory 64MiB --kdf-iterations 3`` away,
    at +45 MiB peak RSS and ~0.25 s for every command that opens the repository. scrypt's
    default, N = 2**14 with r = 8, is 16 MiB: its paper's interactive-login setting.
    """

    algorithm: KdfAlgorithm = "argon2id"
    time_cost: int = 4  # argon2 passes
    memory_kib: int = 19 * 1024  # argon2 memory
    parallelism: int = 1
    log_n: int = 14  # scrypt: N = 2**log_n, r = 8, p = 1 (128 * r * N bytes = 16 MiB)

    def to_json(self) -> dict[str, Any]:
        if self.algorithm == "argon2id":
            return {
                "algorithm": "argon2id",
                "time_cost": self.time_cost,
                "memory_kib": self.memory_kib,
                "parallelism": self.parallelism,
            }
        return {"algorithm": "scrypt", "log_n": self.log_n, "r": 8, "p": 1}

    @classmethod
    def from_json(cls, data: Any) -> KdfParams:
        if not isinstance(data, dict):
            raise IntegrityError("key file: 'kdf' is not an object")
        algorithm = data.get("algorithm")
        try:
            if algorithm == "argon2id":
                params = cls(
                    "argon2id",
                    time_cost=int(data["time_cost"]),
                    memory_kib=int(data["memory_kib"]),
                    parallelism=int(data["parallelism"]),
                )
            elif algorithm == "scrypt":
                if (data.get("r"), data.get("p")) != (8, 1):
                    raise IntegrityError("key file: unsupported scrypt r/p parameters")
                params = cls("scrypt", log_n=int(data["log_n"]))
            else:
                raise IntegrityError(f"key file: unknown KDF {algorithm!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"key file: malformed KDF parameters ({exc})") from exc
        params.validate()
        return params

    def out_of_range(self) -> str | None:
        """What is outside the bounds this program derives keys with, or None.

        Argon2id needs at least 8 KiB of memory per lane (``parallelism``); the upper bounds
        keep a hostile key file from making us allocate terabytes or spin for hours."""
        if self.algorithm == "argon2id":
            if not 1 <= self.parallelism <= _MAX_PARALLELISM:
                return f"argon2id parallelism {self.parallelism} is out of range (1 to {_MAX_PARALLELISM})"
            if not 1 <= self.time_cost <= _MAX_TIME_COST:
                return f"argon2id passes {self.time_cost} is out of range (1 to {_MAX_TIME_COST})"
            low = 8 * self.parallelism
            if not low <= self.memory_kib <= _MAX_MEMORY_KIB:
                return (
                    f"argon2id memory {self.memory_kib} KiB is out of range "
                    f"({low} KiB to {_MAX_MEMORY_KIB // (1024 * 1024)} GiB)"
                )
        elif not 10 <= self.log_n <= _MAX_SCRYPT_LOG_N:
            return f"scrypt log_n {self.log_n} is out of range (10 to {_MAX_SCRYPT_LOG_N})"
        return None

    def validate(self) -> None:
        """Refuse parameters read from a key file that are out of range (damaged or hostile)."""
        problem = self.out_of_range()
        if problem is not None:
            raise IntegrityError(f"key file: {problem}")

    def derive(self, passphrase: bytes, salt: bytes) -> bytes:
        """The 32-byte key-encryption key for ``passphrase``."""
        if self.algorithm == "argon2id":
            from argon2.low_level import Type, hash_secret_raw

            return hash_secret_raw(
                passphrase,
                salt,
                time_cost=self.time_cost,
                memory_cost=self.memory_kib,
                parallelism=self.parallelism,
                hash_len=32,
                type=Type.ID,
            )
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

        return Scrypt(salt=salt, length=32, n=2**self.log_n, r=8, p=1).derive(passphrase)


def fields_checksum(doc: dict[str, Any]) -> str:
    """BLAKE3-256 (hex) of the canonical JSON of every field but the checksum itself."""
    fields = {k: v for k, v in doc.items() if k != CHECKSUM_FIELD}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return blake3.blake3(canonical.encode("ascii")).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise DamagedKey(f"its {what} is not a string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise DamagedKey(f"its {what} is not base64") from None


@dataclass(frozen=True)
class KeyFile:
    """One passphrase's wrapping of the master key (stored in plaintext JSON)."""

    id: str
    created: str
    hostname: str
    username: str
    kdf: KdfParams
    salt: bytes
    nonce: bytes
    wrapped: bytes
    extra: dict[str, Any] = field(default_factory=dict)
    # Whether the file carried a checksum that matched (False: written before checksums).
    checksummed: bool = field(default=True, compare=False)

    @classmethod
    def wrap(
        cls,
        master: MasterKey,
        passphrase: bytes,
        *,
        kdf: KdfParams,
        created: str,
        hostname: str,
        username: str,
    ) -> KeyFile:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        salt = token_bytes(16)
        nonce = token_bytes(12)
        kek = kdf.derive(passphrase, salt)
        wrapped = AESGCM(kek).encrypt(nonce, master.raw, _WRAP_AAD)
        return cls(token_hex(16), created, hostname, username, kdf, salt, nonce, wrapped)

    def unwrap(self, passphrase: bytes) -> MasterKey:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        kek = self.kdf.derive(passphrase, self.salt)
        try:
            raw = AESGCM(kek).decrypt(self.nonce, self.wrapped, _WRAP_AAD)
        except InvalidTag:
            raise PassphraseError(f"the passphrase does not open key {self.id[:8]}") from None
        if len(raw) != MASTER_KEY_BYTES:
            raise IntegrityError(f"key file {self.id[:8]}: wrapped key has the wrong length")
        return MasterKey(raw)

    def encode(self) -> bytes:
        doc = {
            "version": KEY_FILE_VERSION,
            "id": self.id,
            "created": self.created,
            "hostname": self.hostname,
            "username": self.username,
            "kdf": self.kdf.to_json(),
            "salt": _b64(self.salt),
            "nonce": _b64(self.nonce),
            "wrapped": _b64(self.wrapped),
            **self.extra,
        }
        doc[CHECKSUM_FIELD] = fields_checksum(doc)
        return json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"

    @classmethod
    def decode(cls, data: bytes, what: str = "key file") -> KeyFile:
        """Parse and check a key file; ``what`` names it in errors (``key file keys/3f9a2c1b``).

        Raises :class:`DamagedKey` for anything malformed or a checksum that does not match."""
        try:
            return cls._decode(data)
        except DamagedKey as exc:
            raise DamagedKey(f"{what} is damaged ({exc.message})") from None
        except UnsupportedFormat as exc:
            raise UnsupportedFormat(f"{what}: {exc.message}") from None
        except IntegrityError as exc:  # bounds of the KDF parameters
            raise DamagedKey(f"{what} is damaged ({exc.message.removeprefix('key file: ')})") from None

    @classmethod
    def _decode(cls, data: bytes) -> KeyFile:
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, ValueError):
            raise DamagedKey("it is not valid JSON") from None
        if not isinstance(doc, dict):
            raise DamagedKey("it is not a JSON object")
        stored = doc.get(CHECKSUM_FIELD)
        if stored is not None and stored != fields_checksum(doc):
            raise DamagedKey("its checksum does not match its contents")
        if doc.get("version") != KEY_FILE_VERSION:
            if stored is None:
                raise DamagedKey(f"its version field is {doc.get('version')!r}")
            raise UnsupportedFormat(f"key file version {doc.get('version')!r}; this Lifeboat reads version 1")
        known = {"version", "id", "created", "hostname", "username", "kdf", "salt", "nonce", "wrapped", CHECKSUM_FIELD}
        try:
            key = cls(
                id=str(doc["id"]),
                created=str(doc["created"]),
                hostname=str(doc.get("hostname", "")),
                username=str(doc.get("username", "")),
                kdf=KdfParams.from_json(doc["kdf"]),
                salt=_unb64(doc["salt"], "salt"),
                nonce=_unb64(doc["nonce"], "nonce"),
                wrapped=_unb64(doc["wrapped"], "wrapped key"),
                extra={k: v for k, v in doc.items() if k not in known},
                checksummed=stored is not None,
            )
        except KeyError as exc:
            raise DamagedKey(f"it lacks the field {exc.args[0]!r}") from None
        if len(key.nonce) != 12 or len(key.salt) < 16:
            raise DamagedKey("malformed salt or nonce")
        if len(key.wrapped) != MASTER_KEY_BYTES + 16:
            raise DamagedKey("the wrapped key has the wrong length")
        return key
