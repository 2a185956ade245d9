"""Sextant's foundation: settings, errors, logs, Postgres and Kafka helpers, the process
runtime, probes and the call model that both processes share. It imports nothing else of
ours; `ingest`, `worker` and `ops` stand on it."""
