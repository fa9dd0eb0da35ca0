"""Sources and sinks: collections, the transaction generator, files, Kafka, SQLite."""
