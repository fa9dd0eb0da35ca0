"""JSON-lines and CSV files: sources (bounded or following a growing file) and sinks.

A file source reads whole lines; its position is the byte offset of the next line, so a
restored job continues exactly after the last line of its checkpoint. Each line is
decoded for the source's *role*: transactions (validated, see
:mod:`fraudstream.connectors.codecs`), rules (``fraudstream.fraud.rules.parse_rule``) or
plain JSON objects / CSV rows. A line that fails goes to the dead letters with its raw
bytes, the reason and ``offset N``; blank lines are skipped.

With ``follow=true`` the source does not end at the end of the file: it waits for more
lines (a line counts once its newline is written), like ``tail -f``. A file is read by
one reader (``max_parallelism = 1``).

CLI specs: ``jsonl:PATH[,time-field=NAME][,follow=true][,max-bytes=N]`` and
``csv:PATH[,header=false]...``; sinks ``jsonl:PATH`` and ``csv:PATH``
(exactly once with checkpoints: see :mod:`fraudstream.connectors.files._sink`).
"""

from fraudstream.connectors.files._sink import ConsoleSink, CsvSink, FileCommittable, JsonLinesSink
from fraudstream.connectors.files._source import CsvSource, JsonLinesSource
from fraudstream.connectors.files._specs import (
    csv_sink,
    csv_source,
    jsonl_sink,
    jsonl_source,
    print_sink,
)

__all__ = [
    "ConsoleSink",
    "CsvSink",
    "CsvSource",
    "FileCommittable",
    "JsonLinesSink",
    "JsonLinesSource",
    "csv_sink",
    "csv_source",
    "jsonl_sink",
    "jsonl_source",
    "print_sink",
]
