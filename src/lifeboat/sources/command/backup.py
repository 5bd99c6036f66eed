"""Backing up a producer's output: run it, store its standard output as it comes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lifeboat.core.chunking import Chunker
from lifeboat.core.progress import Progress
from lifeboat.core.protocols import BlobSaver
from lifeboat.sources.command.spec import ProgramSpec
from lifeboat.sources.stream import StoredStream, store_stream
from lifeboat.sources.tools.program import Producer, ProgramExit, StderrSink


@dataclass(frozen=True)
class ProducedStream:
    """What the producer wrote (stored, not yet committed) and how it ended."""

    stored: StoredStream
    ended: ProgramExit


def produce(
    saver: BlobSaver,
    chunker: Chunker,
    producer: ProgramSpec,
    *,
    progress: Progress,
    on_stderr: StderrSink | None = None,
    cancel: Callable[[], None] | None = None,
) -> ProducedStream:
    """Run ``producer`` and store its output; raises SourceError unless it exited 0.

    Any failure while storing (or an interrupt, or ``cancel`` raising) stops the producer before it goes on.
    """
    with Producer(producer.argv, env=producer.env, on_stderr=on_stderr) as running:
        stored = store_stream(saver, chunker, running.stdout, progress, cancel=cancel)
        ended = running.finish()
    return ProducedStream(stored, ended)
