"""Reading archived WAL back and proving each file is what its name says.

A file is *verified* when its object authenticates, decompresses and matches its embedded
name, size and hash (:meth:`WalArchive.read_verified`), and its content is what a file of
that name must be: a segment or ``.partial`` opens with a long page header naming its
database system, timeline, position and size (:mod:`lifeboat.core.walpage`); a
``.history`` file parses as a timeline history; a ``.backup`` file parses as a backup
label that names its own segment and offset. ``check --read-data`` and the restore
pre-check (:func:`verify_recovery_wal`) both read through here, several files at a time,
each worker holding one sealed object and a chunk of one file.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from itertools import islice

from lifeboat.core.wal import (
    TimelineHistory,
    WalFileKind,
    WalSegment,
    check_segment_size,
    parse_backup_label,
    parse_wal_file_name,
)
from lifeboat.core.walpage import first_page_timelines, parse_long_header, segment_problem
from lifeboat.errors import StorageError, StorageNotFound, WalDamaged, WalMissing
from lifeboat.repository.wal import WalArchive, WalContent

TEXT_FILE_MAX = 1024 * 1024  # a history or backup file larger than this is not one

HistoryOf = Callable[[int], TimelineHistory | None]


def verify_file(archive: WalArchive, name: str, *, segment_size: int | None, history_of: HistoryOf) -> WalContent:
    """Read ``name`` back and prove it; :class:`WalDamaged` says why it is not what its name says.

    ``segment_size`` is the system's (None: unknown, the page header's is taken);
    ``history_of(timeline)`` gives the history a segment's first page is judged by
    (None when unknown). Storage errors propagate.
    """
    parsed = parse_wal_file_name(name)
    what = f"archived WAL file {name}"
    if parsed.kind in (WalFileKind.SEGMENT, WalFileKind.PARTIAL):
        content = archive.read_verified(name)
        try:
            header = parse_long_header(content.head)
            segment = parsed.segment(segment_size or check_segment_size(header.segment_size))
        except ValueError as exc:
            raise WalDamaged(f"{what}: not a WAL segment: {exc}") from None
        problem = segment_problem(
            header,
            segment,
            system_id=archive.system_id,
            length=content.size,
            timelines=first_page_timelines(segment, history_of(segment.timeline)),
        )
        if problem is not None:
            raise WalDamaged(f"{what}: {problem}")
        return content
    content = archive.read_verified(name, keep=TEXT_FILE_MAX)
    if content.size > TEXT_FILE_MAX:
        raise WalDamaged(f"{what}: {content.size} bytes, too large for a {parsed.kind.value} file")
    text = content.head.decode("utf-8", errors="replace")
    try:
        if parsed.kind is WalFileKind.HISTORY:
            TimelineHistory.parse(parsed.timeline, text)
        else:
            _check_backup_file(name, text, segment_size)
    except ValueError as exc:
        raise WalDamaged(f"{what}: malformed: {exc}") from None
    return content


def _check_backup_file(name: str, text: str, segment_size: int | None) -> None:
    """A ``<segment>.<offset>.backup`` file must name its own segment and start offset."""
    label = parse_backup_label(text)
    if label.start_wal != name[:24]:
        raise ValueError(f"it records the start of a backup in {label.start_wal}")
    if segment_size and label.start_lsn % segment_size != int(name[25:33], 16):
        raise ValueError(f"it records a backup starting at {label.start_lsn}, not at offset {name[25:33]}")


Outcome = WalContent | WalDamaged | StorageError


def read_files(
    archive: WalArchive,
    names: Sequence[str],
    *,
    segment_size: int | None,
    history_of: HistoryOf,
    workers: int,
) -> Generator[tuple[str, Outcome], None, None]:
    """Verify ``names``, ``workers`` at a time, yielding each outcome in the order given.

    At most ``2 * workers`` files are in flight or waiting to be taken, so memory stays
    bounded whatever the number of files. Damage and storage errors are outcomes, not
    exceptions; anything else (a bug) propagates. Files not yet started are cancelled when
    the caller stops early.
    """

    def one(name: str) -> Outcome:
        try:
            return verify_file(archive, name, segment_size=segment_size, history_of=history_of)
        except (WalDamaged, StorageError) as exc:
            return exc

    workers = max(1, workers)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lifeboat-walverify")
    pending: deque[tuple[str, Future[Outcome]]] = deque()
    queue = iter(names)
    try:
        # A bounded window: a slow file never lets finished results pile up behind it.
        for name in islice(queue, 2 * workers):
            pending.append((name, pool.submit(one, name)))
        while pending:
            name, future = pending.popleft()
            outcome = future.result()
            for following in islice(queue, 1):
                pending.append((following, pool.submit(one, following)))
            yield name, outcome
    finally:
        for _, future in pending:
            future.cancel()
        pool.shutdown(wait=True)


def verify_recovery_wal(
    archive: WalArchive, segments: Sequence[WalSegment], history: TimelineHistory, *, workers: int
) -> int:
    """Before a restore writes anything: read every segment recovery will replay and prove it.

    Raises :class:`WalDamaged` naming the first damaged segment (in replay order), or
    :class:`WalMissing` when one vanished since the archive was listed; storage errors
    propagate as they are. Returns the stored bytes read.
    """
    if not segments:
        return 0
    by_name = {s.name: s for s in segments}
    outcomes = read_files(
        archive, list(by_name), segment_size=segments[0].size, history_of=lambda _t: history, workers=workers
    )
    read = 0
    with closing(outcomes):
        for name, outcome in outcomes:
            segment = by_name[name]
            if isinstance(outcome, WalDamaged):
                raise WalDamaged(
                    f"WAL segment {name} (timeline {segment.timeline}, system {archive.system_id}) is damaged "
                    f"and recovery needs it; nothing was restored: {_reason(name, outcome)}",
                    hint="restore from a replica repository made by 'lifeboat copy', or choose a recovery target "
                    f"before LSN {segment.start_lsn}; 'lifeboat check --read-data' shows every damaged WAL file",
                )
            if isinstance(outcome, StorageNotFound):
                raise WalMissing(f"WAL segment {name} disappeared from the archive while the restore read it")
            if isinstance(outcome, StorageError):
                raise outcome
            read += outcome.stored_bytes
    return read


def _reason(name: str, damage: WalDamaged) -> str:
    """The damage without the file name the message starts with."""
    return damage.message.removeprefix(f"archived WAL file {name}: ")
