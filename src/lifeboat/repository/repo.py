"""An open repository: its keys, its objects, its index, and verified reads.

``Repository.init`` creates one; ``Repository.open`` unlocks one with a passphrase.
Every read is verified: object names are checked against the hash of their bytes,
ciphertexts are authenticated, and blobs are checked against their keyed id, so
damaged or hostile data raises :class:`IntegrityError` and is never returned.
"""

from __future__ import annotations

import contextlib
import getpass
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Protocol, TypeVar, cast

import blake3

from lifeboat.core.chunking import Chunker
from lifeboat.core.host import this_host
from lifeboat.core.ids import BlobType, short
from lifeboat.core.packreads import BlobWrite, PackRead
from lifeboat.core.records import Record
from lifeboat.core.snapshot import Snapshot, UnreadableSnapshot
from lifeboat.core.tokens import token_hex
from lifeboat.core.tree import ParentEntry, Tree, parse_parent_entries
from lifeboat.errors import (
    DamagedHeader,
    DamagedKey,
    IntegrityError,
    ObjectNotFound,
    PassphraseError,
    RepositoryExists,
    RepositoryNotFound,
    StorageAlreadyExists,
    StorageError,
    StorageNotFound,
    option,
)
from lifeboat.repository import layout
from lifeboat.repository.bundle import MIN_BUNDLED, SnapshotBundle
from lifeboat.repository.compression import Compressor, decompress
from lifeboat.repository.crypto.aead import ObjectCipher, ObjectKind, PackCipher
from lifeboat.repository.crypto.keys import KdfParams, KeyFile, MasterKey
from lifeboat.repository.header import RepositoryHeader, mentions_format
from lifeboat.repository.index import BlobIndex, BlobLocation, EncodedIndexFile, IndexFile
from lifeboat.repository.lock import HeldLock, LockStore, acquire
from lifeboat.repository.pack import PackEntry, parse_header, read_pack_entries
from lifeboat.repository.wallisting import WalListing
from lifeboat.storage.base import Backend, list_names, read_stream

_Read = TypeVar("_Read")  # what an index file is read as (Repository._index_objects)


class WalCatalog(Protocol):
    """Gives a cluster's WAL listing without listing (and stating) every object on every
    call: a local catalogue checked against the storage (operations/walcatalog.py)."""

    def listing(self, repo: Repository, system_id: str) -> WalListing:
        """The archived files of cluster ``system_id`` as the storage holds them now."""
        ...


class IndexCatalog(Protocol):
    """Gives a repository's blob index without fetching every index file on every call."""

    def index_of(self, repo: Repository, index_ids: list[str]) -> BlobIndex:
        """The union of the index files ``index_ids`` (listed now), superseded ones left out."""
        ...


if TYPE_CHECKING:
    from lifeboat.repository.treespans import TreeSpans


class SnapshotCatalog(Protocol):
    """Gives a repository's snapshots without fetching every record on every call."""

    def snapshots_of(
        self, repo: Repository, *, kind: str | None = None
    ) -> tuple[list[Snapshot], list[UnreadableSnapshot]]:
        """Every snapshot listed now (oldest first; with ``kind``, those of that kind) and those
        that cannot be read."""
        ...


_HEX_RE = re.compile(r"^[0-9a-f]{64}$")
_KEY_NAME_RE = re.compile(r"^keys/[0-9a-f]{32}$")
# Reads of whole objects (index files, snapshots) run this many at a time.
READ_PARALLELISM = 8
PACK_CIPHER_CACHE = 1024  # pack ciphers kept by a repository (about 200 bytes each)


def _now() -> datetime:
    return datetime.now(UTC)


def object_hash(data: bytes | bytearray | memoryview) -> str:
    """The name-id of a stand-alone object or pack: unkeyed BLAKE3 of its bytes."""
    return blake3.blake3(data, max_threads=1).hexdigest()


def _short_key(name: str) -> str:
    """``keys/3f9a2c1b`` for the key file ``keys/3f9a…``: how messages name a key file."""
    return name[: len(layout.KEYS) + 8]


def _damaged_keys(damaged: dict[str, DamagedKey], intact: int) -> DamagedKey:
    """The error for damaged key files, with ``intact`` others that the passphrase did not open."""
    if len(damaged) == 1:
        what = next(iter(damaged.values())).message
    else:
        what = "key files " + ", ".join(_short_key(name) for name in damaged) + " are damaged"
    if intact:
        return DamagedKey(
            f"{what}, and the passphrase opens none of the other {intact} key file(s)",
            hint="another key may open the repository: try the passphrase of another key; if this passphrase "
            "belongs to the damaged key file, restore it from a copy or backup of the repository's storage",
        )
    return DamagedKey(f"{what}, and the repository has no other key file: it cannot be opened")


def _unreadable_keys(unreadable: dict[str, StorageError], intact: int, damaged: int) -> StorageError:
    """The error when key files could not be read and the passphrase opened none of the others."""
    name, first = next(iter(unreadable.items()))
    others = [_short_key(n) for n in list(unreadable)[1:]]
    what = f"key file {_short_key(name)} cannot be read ({first.message})"
    if others:
        what += f", nor can {', '.join(others)}"
    readable = intact + damaged
    tried = f"the passphrase opens none of the other {readable} key file(s)" if readable else "there is no other"
    hint = f"{first.hint}; or use the passphrase of a key file that can be read"
    error = type(first)(f"{what}, and {tried}: the passphrase may belong to the unreadable one", hint=hint)
    error.exit_code = first.exit_code
    return error


@dataclass(frozen=True)
class KeyInfo:
    """A key file as ``key list`` shows it."""

    id: str
    created: str
    hostname: str
    username: str
    algorithm: str
    current: bool
    damaged: bool = False
    unreadable: bool = False  # the storage refused to give it (a permission): not damage


class Repository:
    """An unlocked repository on some backend."""

    def __init__(
        self,
        backend: Backend,
        header: RepositoryHeader,
        master: MasterKey,
        *,
        key_id: str = "",
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.backend = backend
        self.header = header
        self._master = master
        self.key_id = key_id
        self.clock = clock
        self.encryption_root = master.encryption_root
        # Where snapshot records come from when not from storage alone (a local cache checked
        # against each listing, operations/metacache.py); None: every record is fetched.
        self.snapshot_catalog: SnapshotCatalog | None = None
        # Where WAL listings come from when not from one storage listing alone (the same
        # local cache, checked against a listing of names; operations/walcatalog.py).
        self.wal_catalog: WalCatalog | None = None
        # Where the blob index comes from when not from every index file (a local copy of the
        # union, checked against the listing of index/; operations/indexcache.py).
        self.index_catalog: IndexCatalog | None = None
        self._blob_id_key = master.blob_id_key
        self.chunker_seed = master.chunker_seed
        self.objects = ObjectCipher(self.encryption_root)
        self.compressor = Compressor(header.compression_level)
        self.locks = LockStore(backend, self.objects, clock=clock)
        self._index: BlobIndex | None = None
        self._index_ids: set[str] = set()
        self._index_guard = threading.Lock()
        self._pack_ciphers: dict[tuple[bytes, bytes], PackCipher] = {}
        self._held_locks: list[HeldLock] = []  # a lost one stops every later read and write

    # --- creation and unlocking -----------------------------------------------------------
    @classmethod
    def init(
        cls,
        backend: Backend,
        passphrase: bytes,
        *,
        kdf: KdfParams | None = None,
        header: RepositoryHeader | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> Repository:
        """Create a repository in an empty location."""
        try:
            existing = next(iter(backend.list("")), None)
        except StorageNotFound:
            existing = None
        if existing is not None:
            raise RepositoryExists(f"{backend.location} is not empty (it holds {existing.name})")
        master = MasterKey.generate()
        header = header or RepositoryHeader(token_hex(16), clock().isoformat())
        key = KeyFile.wrap(
            master,
            passphrase,
            kdf=kdf or KdfParams(),
            created=clock().isoformat(),
            hostname=this_host(),
            username=getpass.getuser(),
        )
        # Key first: a header without a key would be a repository nobody can open.
        backend.put(layout.key_name(key.id), key.encode(), if_absent=True)
        backend.put(layout.HEADER, header.encode(master.header_mac_key), if_absent=True)
        return cls(backend, header, master, key_id=key.id, clock=clock)

    @classmethod
    def read_header(cls, backend: Backend) -> tuple[RepositoryHeader, str]:
        """The format header and its MAC. A location without one is "no repository" (10)
        unless it holds this format's key files or the bytes name the format: then the
        header is damaged or missing (13)."""
        try:
            data = backend.get(layout.HEADER)
        except StorageNotFound:
            if cls._holds_key_files(backend):
                raise DamagedHeader(
                    f"the format header 'config' of the repository at {backend.location} is missing "
                    "(its key files are there)"
                ) from None
            raise RepositoryNotFound(f"no Lifeboat repository at {backend.location}") from None
        try:
            return RepositoryHeader.decode(data)
        except RepositoryNotFound:
            if mentions_format(data) or cls._holds_key_files(backend):
                raise DamagedHeader(
                    f"the format header 'config' of the repository at {backend.location} is damaged: "
                    f"it is not readable as a format header ({len(data)} bytes)"
                ) from None
            raise RepositoryNotFound(
                f"{backend.location} holds no Lifeboat repository: its 'config' is something else",
                hint=f"check {option('repo')} / LIFEBOAT_REPO: it names a location that holds other files",
            ) from None

    @staticmethod
    def _holds_key_files(backend: Backend) -> bool:
        try:
            return any(_KEY_NAME_RE.match(info.name) for info in backend.list(layout.KEYS))
        except StorageNotFound:  # the location itself does not exist
            return False

    @classmethod
    def open(cls, backend: Backend, passphrase: bytes, *, clock: Callable[[], datetime] = _now) -> Repository:
        """Unlock the repository with any key file the passphrase opens.

        A damaged key file does not stop the others from being tried. When none opens, the
        error says which was true: no key file at all, damaged ones (another key may open the
        repository), or — every key file intact — the wrong passphrase."""
        header, mac = cls.read_header(backend)
        keys, damaged, unreadable = cls._read_key_files(backend)
        if not keys and not damaged and not unreadable:
            raise DamagedKey(f"the repository at {backend.location} has no key files: it cannot be opened without one")
        for key in keys:
            try:
                master = key.unwrap(passphrase)
            except PassphraseError:
                continue
            header.verify(mac, master.header_mac_key)
            return cls(backend, header, master, key_id=key.id, clock=clock)
        header.check_version()
        if unreadable:  # the passphrase may be the unreadable key's: never call it wrong
            raise _unreadable_keys(unreadable, len(keys), len(damaged))
        if damaged:
            raise _damaged_keys(damaged, len(keys))
        message = f"wrong passphrase: none of the {len(keys)} key(s) of the repository opens with it"
        unchecked = [key.id[:8] for key in keys if not key.checksummed]
        if unchecked:
            message += (
                f" (key file(s) {', '.join(unchecked)} predate key-file checksums: damage to them cannot be "
                "told apart from a wrong passphrase)"
            )
        raise PassphraseError(message)

    @staticmethod
    def _read_key_files(
        backend: Backend,
    ) -> tuple[list[KeyFile], dict[str, DamagedKey], dict[str, StorageError]]:
        """The intact key files, what is wrong with the damaged ones, and why the storage
        would not give the unreadable ones (a permission): damaged and unreadable by name."""
        keys: list[KeyFile] = []
        damaged: dict[str, DamagedKey] = {}
        unreadable: dict[str, StorageError] = {}
        for info in backend.list(layout.KEYS):
            try:
                data = backend.get(info.name)
            except StorageNotFound:
                continue  # removed since listed ('key remove' in another process)
            except StorageError as exc:
                unreadable[info.name] = exc
                continue
            try:
                keys.append(KeyFile.decode(data, f"key file {_short_key(info.name)}"))
            except DamagedKey as exc:
                damaged[info.name] = exc
        return keys, damaged, unreadable

    # --- key management (no data is re-encrypted) ---------------------------------------------
    def list_keys(self) -> list[KeyInfo]:
        """Every key file, oldest first; damaged ones (which tell nothing but their id) first."""
        keys, damaged, unreadable = self._read_key_files(self.backend)
        infos = [KeyInfo(k.id, k.created, k.hostname, k.username, k.kdf.algorithm, k.id == self.key_id) for k in keys]
        infos += [KeyInfo(name[len(layout.KEYS) :], "", "", "", "", False, damaged=True) for name in damaged]
        infos += [KeyInfo(name[len(layout.KEYS) :], "", "", "", "", False, unreadable=True) for name in unreadable]
        return sorted(infos, key=lambda k: k.created)

    def add_key(self, passphrase: bytes, *, kdf: KdfParams | None = None) -> str:
        key = KeyFile.wrap(
            self._master,
            passphrase,
            kdf=kdf or KdfParams(),
            created=self.clock().isoformat(),
            hostname=this_host(),
            username=getpass.getuser(),
        )
        self.backend.put(layout.key_name(key.id), key.encode(), if_absent=True)
        return key.id

    def resolve_key(self, prefix: str) -> str:
        matches = [k.id for k in self.list_keys() if k.id.startswith(prefix)]
        if not matches:
            raise ObjectNotFound(f"no key with id {prefix!r}", hint="'lifeboat key list' shows the keys")
        if len(matches) > 1:
            raise ObjectNotFound(f"key id {prefix!r} is ambiguous", hint="give more digits of the id")
        return matches[0]

    def remove_key(self, key_id: str) -> None:
        keys = self.list_keys()
        if len(keys) <= 1:
            raise IntegrityError(
                "refusing to remove the only key: the repository could never be opened again",
                hint="add another key first with 'lifeboat key add'",
            )
        if key_id == self.key_id:
            raise IntegrityError(
                "refusing to remove the key this command was opened with",
                hint="open the repository with another passphrase to remove this key",
            )
        self.backend.delete(layout.key_name(key_id))

    def change_passphrase(self, new_passphrase: bytes, *, kdf: KdfParams | None = None) -> str:
        """Add a key for the new passphrase, then remove the one used to open."""
        new_id = self.add_key(new_passphrase, kdf=kdf)
        old_id, self.key_id = self.key_id, new_id
        if old_id:
            self.backend.delete(layout.key_name(old_id))
        return new_id

    def chunker(self) -> Chunker:
        """The content-defined chunker every writer of this repository shares."""
        params = self.header.chunker
        return Chunker(params.min_size, params.avg_size, params.max_size, self.chunker_seed)

    # --- blob ids and stand-alone objects ------------------------------------------------------
    def blob_id(self, data: bytes | bytearray | memoryview) -> bytes:
        return blake3.blake3(data, key=self._blob_id_key, max_threads=1).digest()

    def seal_object(self, kind: ObjectKind, payload: bytes) -> tuple[str, bytes]:
        sealed = self.objects.seal(kind, self.compressor.compress(payload))
        return object_hash(sealed), sealed

    def save_object(self, kind: ObjectKind, prefix: str, payload: bytes) -> str:
        object_id, sealed = self.seal_object(kind, payload)
        self.ensure_locked()
        self.backend.put(prefix + object_id, sealed)
        return object_id

    def open_object(self, kind: ObjectKind, name: str, data: bytes) -> bytes:
        """Verify and decrypt an object already read from storage."""
        object_id = layout.pack_id_of(name)
        if _HEX_RE.match(object_id) and object_hash(data) != object_id:
            raise IntegrityError(f"{name}: content does not match its name (damaged)")
        return decompress(self.objects.open(kind, data, what=name))

    def load_object(self, kind: ObjectKind, name: str) -> bytes:
        self.ensure_locked()
        return self.open_object(kind, name, self.backend.get(name))

    def _ids(self, prefix: str) -> list[str]:
        """The ids below ``prefix``, from a listing of names (no ``stat`` of each file on a local disk)."""
        cut = len(prefix)
        return sorted(name for name in (name[cut:] for name in list_names(self.backend, prefix)) if _HEX_RE.match(name))

    # --- index -------------------------------------------------------------------------------
    def index_ids(self) -> list[str]:
        return self._ids(layout.INDEX)

    def load_index_file(self, index_id: str) -> IndexFile:
        return IndexFile.decode(self._index_object(index_id))

    def _index_object(self, index_id: str) -> bytes:
        return self.load_object(ObjectKind.INDEX, layout.index_name(index_id))

    def load_index_files(self, index_ids: Iterable[str]) -> Iterator[tuple[str, IndexFile]]:
        return self._index_objects(index_ids, IndexFile.decode)

    def load_encoded_index_files(self, index_ids: Iterable[str]) -> Iterator[tuple[str, EncodedIndexFile]]:
        """:meth:`load_index_files` for loading a :class:`BlobIndex`: no object per blob."""
        return self._index_objects(index_ids, EncodedIndexFile.of)

    def _index_objects(self, index_ids: Iterable[str], read: Callable[[bytes], _Read]) -> Iterator[tuple[str, _Read]]:
        """The index files, in order, read ``READ_PARALLELISM`` at a time and at most twice that
        many ahead of the caller: a large index is never all in memory at once."""
        ids = iter(index_ids)

        def load(index_id: str) -> _Read:
            return read(self._index_object(index_id))

        with ThreadPoolExecutor(max_workers=READ_PARALLELISM) as pool:
            ahead = deque((i, pool.submit(load, i)) for i in islice(ids, 2 * READ_PARALLELISM))
            while ahead:
                index_id, loading = ahead.popleft()
                found = loading.result()
                following = next(ids, None)
                if following is not None:
                    ahead.append((following, pool.submit(load, following)))
                yield index_id, found

    def index(self) -> BlobIndex:
        """The in-memory index of every blob, loaded on first use."""
        with self._index_guard:
            if self._index is None:
                ids = self.index_ids()
                catalog = self.index_catalog
                self._index = catalog.index_of(self, ids) if catalog is not None else self.build_index(ids)
                self._index_ids = set(ids)
            return self._index

    def build_index(self, index_ids: list[str]) -> BlobIndex:
        """The union of the index files ``index_ids`` fetched from storage, leaving out the files
        another one of them supersedes. Each file is added as it arrives and let go (a million
        blobs' files are some 45 MiB): only when one of them supersedes another (a prune's
        rewritten index, its old files not deleted yet) is the index built again from the rest."""
        superseded: set[str] = set()

        def files() -> Iterator[EncodedIndexFile]:
            for _, file in self.load_encoded_index_files(index_ids):
                superseded.update(s.hex() for s in file.supersedes)
                yield file

        index = BlobIndex()
        index.bulk_load(files())
        if superseded.isdisjoint(index_ids):
            return index
        index = BlobIndex()
        index.bulk_load(file for _, file in self.load_encoded_index_files(i for i in index_ids if i not in superseded))
        return index

    def use_index(self, index: BlobIndex) -> None:
        """Read blobs through ``index`` (check builds one that tolerates damaged index files)."""
        with self._index_guard:
            self._index = index

    def forget_index(self) -> None:
        """Drop the cached index so the next use reloads it from storage."""
        with self._index_guard:
            self._index = None

    def save_index_file(self, index: IndexFile | bytes) -> str:
        """Store an index file (or its encoding); returns its id."""
        return self.save_object(ObjectKind.INDEX, layout.INDEX, index if isinstance(index, bytes) else index.encode())

    # --- blobs -------------------------------------------------------------------------------
    def locate(self, blob_id: bytes) -> BlobLocation:
        location = self.index().lookup(blob_id)
        if location is None:
            raise IntegrityError(
                f"blob {short(blob_id)} is not in the index (missing data)",
                hint="run 'lifeboat check'; 'lifeboat repair index' rebuilds the index from the packs",
            )
        return location

    def _pack_cipher(self, pack_id: bytes) -> PackCipher:
        """The pack's cipher; deriving one costs more than opening a small blob, so recent
        ones are kept (a restore of many small files reads each pack many times)."""
        key = (pack_id, self.index().pack_salt(pack_id))
        cipher = self._pack_ciphers.get(key)
        if cipher is None:
            if len(self._pack_ciphers) >= PACK_CIPHER_CACHE:
                self._pack_ciphers.clear()
            cipher = self._pack_ciphers[key] = PackCipher(self.encryption_root, key[1])
        return cipher

    def decode_blob(
        self,
        blob_id: bytes,
        location: BlobLocation,
        ciphertext: bytes | memoryview,
        *,
        cipher: PackCipher | None = None,
    ) -> bytes:
        """Authenticate, decompress and verify one blob's ciphertext."""
        if len(ciphertext) != location.length:
            raise IntegrityError(f"blob {short(blob_id)}: pack {short(location.pack_id)} is truncated")
        cipher = cipher or self._pack_cipher(location.pack_id)
        payload = cipher.open_blob(location.offset, location.type, blob_id, ciphertext)
        data = decompress(payload, location.raw_length)
        if self.blob_id(data) != blob_id:
            raise IntegrityError(f"blob {short(blob_id)} does not match its id (damaged or tampered)")
        return data

    def load_blob(self, blob_id: bytes, blob_type: BlobType = BlobType.DATA) -> bytes:
        location = self.locate(blob_id)
        if location.type != blob_type:
            raise IntegrityError(
                f"blob {short(blob_id)} is a {location.type.name.lower()} blob, not {blob_type.name.lower()}"
            )
        pack = layout.pack_name(location.pack_id.hex())
        ciphertext = self._read_pack_range(pack, location.offset, location.length)
        return self.decode_blob(blob_id, location, ciphertext)

    def raw_lengths(self, blob_ids: Sequence[bytes]) -> list[int]:
        return [self.locate(blob_id).raw_length for blob_id in blob_ids]

    def load_blobs(self, blob_ids: Sequence[bytes], *, max_read: int = 8 * 1024 * 1024) -> Iterator[bytes]:
        """Data blobs in order; blobs adjacent in one pack are fetched with a single read."""
        i = 0
        while i < len(blob_ids):
            first = self.locate(blob_ids[i])
            if first.type != BlobType.DATA:
                raise IntegrityError(f"blob {short(blob_ids[i])} is not a data blob")
            run = [(blob_ids[i], first)]
            end = first.offset + first.length
            j = i + 1
            while j < len(blob_ids) and end - first.offset < max_read:
                loc = self.index().lookup(blob_ids[j])
                if loc is None or loc.pack_id != first.pack_id or loc.offset != end or loc.type != BlobType.DATA:
                    break
                run.append((blob_ids[j], loc))
                end += loc.length
                j += 1
            data = self._read_pack_range(layout.pack_name(first.pack_id.hex()), first.offset, end - first.offset)
            cipher = self._pack_cipher(first.pack_id)
            for blob_id, loc in run:
                start = loc.offset - first.offset
                yield self.decode_blob(blob_id, loc, data[start : start + loc.length], cipher=cipher)
            i = j

    def locate_data(self, blob_ids: Sequence[bytes]) -> list[BlobLocation]:
        """Where each data blob lies; IntegrityError names the first one missing or not data."""
        locations = [self.locate(blob_id) for blob_id in blob_ids]
        for blob_id, location in zip(blob_ids, locations, strict=True):
            if location.type != BlobType.DATA:
                raise IntegrityError(f"blob {short(blob_id)} is not a data blob")
        return locations

    def read_pack_blobs(self, read: PackRead) -> Iterator[tuple[BlobWrite, bytes | IntegrityError]]:
        """The blobs of ``read``, in its order, each verified as it arrives: its data, or the
        IntegrityError that blob alone failed with (the others still arrive). The range is
        read as a stream (one request where the storage allows), holding about a piece and a
        blob in memory whatever its length. A storage failure part-way raises from the
        iterator; a pack shorter than the read gives its missing blobs as truncated."""
        name = layout.pack_name(read.pack_id.hex())
        cipher = self._pack_cipher(read.pack_id)
        self.ensure_locked()
        buffer = bytearray()
        start = read.offset  # the pack offset of buffer[0]
        pending = iter(read.blobs)
        blob = next(pending, None)
        try:
            for piece in read_stream(self.backend, name, read.offset, read.length):
                buffer += piece
                while blob is not None and blob.location.offset + blob.location.length <= start + len(buffer):
                    at = blob.location.offset - start
                    # Opened from the buffer itself (no copy); the views are released before
                    # the buffer shrinks.
                    with memoryview(buffer) as view, view[at : at + blob.location.length] as ciphertext:
                        try:
                            data: bytes | IntegrityError = self.decode_blob(
                                blob.blob_id, cast(BlobLocation, blob.location), ciphertext, cipher=cipher
                            )
                        except IntegrityError as exc:
                            data = exc
                    yield blob, data
                    blob = next(pending, None)
                # Drop what no later blob needs: up to the next blob, or all of it when the
                # next blob starts beyond what has arrived (a gap read over).
                keep = min(len(buffer), (blob.location.offset - start) if blob is not None else len(buffer))
                if keep > 0:
                    del buffer[:keep]
                    start += keep
        except StorageNotFound:
            raise IntegrityError(f"pack {short(read.pack_id)} is missing") from None
        while blob is not None:
            yield blob, IntegrityError(f"blob {short(blob.blob_id)}: pack {short(read.pack_id)} is truncated")
            blob = next(pending, None)

    def verify_pack(self, pack_hex: str) -> list[PackEntry]:
        """Read pack ``pack_hex`` whole and prove it: its bytes hash to its name, its header
        and trailer authenticate, and every blob it lists decrypts and matches its id under
        this repository's keys. Returns the pack's entries; IntegrityError names what failed."""
        data = self.backend.get(layout.pack_name(pack_hex))
        where = f"pack {pack_hex[:8]}"
        if object_hash(data) != pack_hex:
            raise IntegrityError(f"{where}: content does not match its name (damaged)")
        try:
            cipher = parse_header(data, self.encryption_root)
            entries = read_pack_entries(data, self.encryption_root)
        except IntegrityError as exc:
            raise IntegrityError(f"{where}: {exc.message}") from None
        pack_id = bytes.fromhex(pack_hex)
        for entry in entries:
            location = BlobLocation(pack_id, entry.type, entry.offset, entry.length, entry.raw_length)
            try:
                self.decode_blob(entry.id, location, data[entry.offset : entry.offset + entry.length], cipher=cipher)
            except IntegrityError as exc:
                raise IntegrityError(f"{where}: {exc.message}") from None
        return entries

    def read_pack_span(self, pack_id: bytes, offset: int, length: int) -> bytes:
        """``length`` bytes of a pack from ``offset`` (fewer where the pack ends), in one
        streamed request where the storage allows (a long span passes by the read-ahead's
        windows instead of filling them). Not verified: the caller opens each blob in it."""
        self.ensure_locked()
        try:
            return b"".join(read_stream(self.backend, layout.pack_name(pack_id.hex()), offset, length))
        except StorageNotFound:
            raise IntegrityError(f"pack {short(pack_id)} is missing") from None

    def tree_source(self) -> TreeSpans:
        """A reader of the trees of one walk, by pack (repository/treespans.py): it keeps what
        it read, within its budget, until it is dropped."""
        from lifeboat.repository.treespans import TreeSpans

        return TreeSpans(self)

    def _read_pack_range(self, pack_name: str, offset: int, length: int) -> bytes:
        self.ensure_locked()
        try:
            return self.backend.get_range(pack_name, offset, length)
        except StorageNotFound:
            raise IntegrityError(f"pack {short(layout.pack_id_of(pack_name))} is missing") from None

    def load_tree(self, tree_id: bytes) -> Tree:
        return Tree.decode(self.load_blob(tree_id, BlobType.TREE))

    def parent_entries(self, tree_id: bytes) -> dict[str, ParentEntry]:
        """A tree as a backup compares against it (see :class:`ParentEntry`)."""
        return parse_parent_entries(self.load_blob(tree_id, BlobType.TREE))

    # --- snapshots ---------------------------------------------------------------------------
    def snapshot_ids(self) -> list[str]:
        return self._ids(layout.SNAPSHOTS)

    def load_snapshot(self, snapshot_id: str) -> Snapshot:
        try:
            payload = self.load_object(ObjectKind.SNAPSHOT, layout.snapshot_name(snapshot_id))
        except StorageNotFound:
            raise ObjectNotFound(f"no snapshot {snapshot_id[:8]}") from None
        return Snapshot.decode(payload, snapshot_id)

    def snapshots(self, *, kind: str | None = None) -> list[Snapshot]:
        """Every snapshot (with ``kind``: of that kind), oldest first; a damaged one raises
        :class:`IntegrityError`."""
        if self.snapshot_catalog is not None:
            found, damaged = self.snapshot_catalog.snapshots_of(self, kind=kind)
        else:
            found, damaged = self.snapshots_and_damage()
        if damaged:
            raise IntegrityError(damaged[0].describe())
        return [s for s in found if kind is None or s.kind == kind]

    def snapshots_and_damage(self) -> tuple[list[Snapshot], list[UnreadableSnapshot]]:
        """Every snapshot that can be read, oldest first, and those that cannot (damaged):
        for the commands that list and count, so one damaged snapshot hides none of the others.
        A storage failure still raises; a snapshot removed since it was listed is left out."""
        if self.snapshot_catalog is not None:
            return self.snapshot_catalog.snapshots_of(self)
        outcomes, _ = self.fetch_snapshots(self.snapshot_ids())
        found = sorted((o for o in outcomes if isinstance(o, Snapshot)), key=lambda s: (s.time, s.id))
        return found, [o for o in outcomes if isinstance(o, UnreadableSnapshot)]

    def fetch_snapshots(self, ids: Sequence[str]) -> tuple[list[Snapshot | UnreadableSnapshot | None], int]:
        """The snapshots ``ids`` (just listed) read from the storage, in order: each a
        :class:`Snapshot`, an :class:`UnreadableSnapshot` (damaged) or None (removed since it
        was listed); and how many of them came from bundles. Many ids are looked up in the
        bundles first (one read instead of thousands); a copy there is checked against its
        name and decrypted as a fetched object is, and one that fails is fetched instead."""
        outcomes: dict[str, Snapshot | UnreadableSnapshot | None] = {}
        if len(ids) >= MIN_BUNDLED:
            for snapshot_id, data in self.bundled_snapshots(set(ids)).items():
                name = layout.snapshot_name(snapshot_id)
                try:
                    payload = self.open_object(ObjectKind.SNAPSHOT, name, data)
                    outcomes[snapshot_id] = Snapshot.decode(payload, snapshot_id)
                except IntegrityError:
                    continue  # fetched below: the stored object says what is wrong with it
        bundled = len(outcomes)

        def attempt(snapshot_id: str) -> Snapshot | UnreadableSnapshot | None:
            try:
                return self.load_snapshot(snapshot_id)
            except ObjectNotFound:
                return None  # removed by 'forget' since it was listed
            except IntegrityError as exc:
                return UnreadableSnapshot(snapshot_id, exc.message)

        rest = [i for i in ids if i not in outcomes]
        if rest:
            with ThreadPoolExecutor(max_workers=READ_PARALLELISM) as pool:
                outcomes.update(zip(rest, pool.map(attempt, rest), strict=True))
        return [outcomes[i] for i in ids], bundled

    def save_snapshot(self, snapshot: Snapshot) -> Snapshot:
        snapshot_id = self.save_object(ObjectKind.SNAPSHOT, layout.SNAPSHOTS, snapshot.encode())
        return snapshot.with_id(snapshot_id)

    def delete_snapshot(self, snapshot_id: str) -> None:
        self.ensure_locked()
        self.backend.delete(layout.snapshot_name(snapshot_id))

    def resolve_snapshot(self, ref: str, *, candidates: list[Snapshot] | None = None) -> Snapshot:
        """A snapshot by id prefix, or ``latest`` among ``candidates`` (all by default)."""
        if ref == "latest" or ref.startswith("latest"):
            pool = candidates if candidates is not None else self.snapshots()
            if not pool:
                raise ObjectNotFound("the repository holds no matching snapshot")
            return pool[-1]
        return self.load_snapshot(self.resolve_snapshot_id(ref))

    def resolve_snapshot_id(self, ref: str) -> str:
        """The full id of the one stored snapshot whose id starts with ``ref`` (not decoded)."""
        if not ref or not all(c in "0123456789abcdef" for c in ref):
            raise ObjectNotFound(f"{ref!r} is not a snapshot id", hint="give an id prefix or 'latest'")
        matches = [i for i in self.snapshot_ids() if i.startswith(ref)]
        if not matches:
            raise ObjectNotFound(f"no snapshot {ref!r}")
        if len(matches) > 1:
            raise ObjectNotFound(f"snapshot id {ref!r} is ambiguous ({len(matches)} match)", hint="give more digits")
        return matches[0]

    # --- snapshot bundles (bundle.py; written by prune) -----------------------------------------
    def bundle_ids(self) -> list[str]:
        return self._ids(layout.BUNDLES)

    def load_bundle(self, bundle_id: str) -> SnapshotBundle:
        """A bundle; IntegrityError when damaged, ObjectNotFound when gone."""
        name = layout.bundle_name(bundle_id)
        try:
            payload = self.load_object(ObjectKind.BUNDLE, name)
        except StorageNotFound:
            raise ObjectNotFound(f"no bundle {bundle_id[:8]}") from None
        return SnapshotBundle.decode(payload, f"bundle {bundle_id[:8]}")

    def save_bundle(self, bundle: SnapshotBundle) -> str:
        return self.save_object(ObjectKind.BUNDLE, layout.BUNDLES, bundle.encode())

    def bundled_snapshots(self, wanted: set[str]) -> dict[str, bytes]:
        """The stored bytes of the snapshots in ``wanted`` that the bundles hold intact (each
        copy's hash is its id); a bundle that is damaged or gone is passed over."""
        found: dict[str, bytes] = {}
        for bundle_id in self.bundle_ids():
            if len(found) == len(wanted):
                break  # older bundles an object lock keeps cannot add anything
            try:
                bundle = self.load_bundle(bundle_id)
            except (ObjectNotFound, IntegrityError):
                continue  # 'check' reports a damaged bundle; its snapshots are fetched one by one
            for snapshot_id in wanted.intersection(bundle.objects).difference(found):
                data = bundle.objects[snapshot_id]
                if object_hash(data) == snapshot_id:
                    found[snapshot_id] = data
        return found

    # --- records (results of verify and drills; never removed by forget or prune) -------------
    def record_ids(self) -> list[str]:
        return self._ids(layout.RECORDS)

    def save_record(self, record: Record) -> Record:
        """Store ``record`` put-if-absent under the hash of its sealed bytes."""
        record_id, sealed = self.seal_object(ObjectKind.RECORD, record.encode())
        self.ensure_locked()
        with contextlib.suppress(StorageAlreadyExists):  # the same bytes under their own hash: stored
            self.backend.put(layout.record_name(record_id), sealed, if_absent=True)
        return record.with_id(record_id)

    def load_record(self, record_id: str) -> Record:
        """A record by its full id; IntegrityError when damaged, ObjectNotFound when gone."""
        try:
            payload = self.load_object(ObjectKind.RECORD, layout.record_name(record_id))
        except StorageNotFound:
            raise ObjectNotFound(f"no record {record_id[:8]}") from None
        return Record.decode(payload, record_id)

    # --- locks --------------------------------------------------------------------------------
    def lock(self, *, exclusive: bool, operation: str, wait: float = 0.0) -> HeldLock:
        """Take a lock; until it is released, every read and write of this repository first
        checks that it is still held (:meth:`ensure_locked`)."""
        held = acquire(self.locks, exclusive=exclusive, operation=operation, wait=wait)
        self._held_locks = [h for h in self._held_locks if not h.released] + [held]
        return held

    def ensure_locked(self) -> None:
        """Raise :class:`LockLost` if a lock this repository took could not be refreshed in time:
        others may have taken it as stale, so nothing more may be read or written under it."""
        for held in self._held_locks:
            held.ensure_held()
