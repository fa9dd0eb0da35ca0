"""Dead letters: where records that fail to parse or validate go, and how many there were.

Every source hands a bad record to ``ReaderContext.dead_letter`` as a
:class:`~fraudstream.connectors.base.DeadLetter` (raw bytes, reason, source, position);
the runtime emits it on the source's side output :data:`DEAD_LETTER_TAG` and the job
keeps running. :func:`route_dead_letters` sends the side outputs of every source of a
job to one sink: a JSONL file or Kafka topic from the command line, or stderr when the
user named none, so no bad record disappears silently.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import Any

from fraudstream.connectors.base import DeadLetter, Sink, SinkWriter
from fraudstream.datastream.output_tag import OutputTag
from fraudstream.runtime.operators.sources import DEAD_LETTER_TAG_ID

__all__ = ["DEAD_LETTER_TAG", "DeadLetterLogSink", "RecordCounters", "route_dead_letters"]

#: The side output of every source that carries its dead letters.
DEAD_LETTER_TAG = OutputTag(DEAD_LETTER_TAG_ID)


class RecordCounters:
    """Good and bad records read by a source's readers in this process, readable live.

    Readers add to it from the engine's thread; any thread may read :meth:`snapshot`.
    """

    __slots__ = ("_lock", "dead_letters", "records")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records = 0
        self.dead_letters = 0

    def add(self, records: int, dead_letters: int) -> None:
        """Count a batch."""
        with self._lock:
            self.records += records
            self.dead_letters += dead_letters

    def snapshot(self) -> dict[str, int]:
        """``{"records": good, "deadLetters": bad}``."""
        with self._lock:
            return {"records": self.records, "deadLetters": self.dead_letters}

    def __getstate__(self) -> dict[str, int]:
        return {"records": self.records, "dead_letters": self.dead_letters}

    def __setstate__(self, state: dict[str, int]) -> None:
        self._lock = threading.Lock()
        self.records = state["records"]
        self.dead_letters = state["dead_letters"]


class DeadLetterLogSink(Sink[DeadLetter]):
    """Writes each dead letter as one readable line to stderr (the default destination)."""

    def create_writer(self, subtask_index: int, parallelism: int) -> SinkWriter[DeadLetter]:
        """A writer to stderr."""
        return _LogWriter()


class _LogWriter(SinkWriter[DeadLetter]):
    def write(self, values: Sequence[DeadLetter]) -> None:
        lines = []
        for letter in values:
            raw = letter.raw[:200].decode("utf-8", errors="replace")
            lines.append(
                f"fraudstream: dead letter from {letter.source} at {letter.position}: "
                f"{letter.reason}: {raw!r}\n"
            )
        sys.stderr.write("".join(lines))
        sys.stderr.flush()


def route_dead_letters(env: Any, sink: Sink[Any], uid: str = "dead-letters") -> Any:
    """Send the dead letters of every source built so far on ``env`` to ``sink``.

    Call it after the job's streams are built and before ``execute``. Returns the sink's
    ``DataStreamSink``, or ``None`` when the job has no connector source.
    """
    from fraudstream.datastream.data_stream import DataStream

    sources = [node for node in env._nodes if node.kind == "source"]
    if not sources:
        return None
    streams = [DataStream(env, node).get_side_output(DEAD_LETTER_TAG) for node in sources]
    merged = streams[0].union(*streams[1:]) if len(streams) > 1 else streams[0]
    return merged.sink_to(sink).name("dead-letters").uid(uid)
