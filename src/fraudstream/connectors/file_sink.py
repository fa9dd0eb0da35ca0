"""Former home of the file sinks, kept so that code importing it keeps working.

Import from :mod:`fraudstream.connectors.files` instead.
"""

from fraudstream.connectors.files import ConsoleSink, CsvSink, FileCommittable, JsonLinesSink

__all__ = ["ConsoleSink", "CsvSink", "FileCommittable", "JsonLinesSink"]
