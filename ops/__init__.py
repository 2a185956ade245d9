"""Operator tools and the `sextant` command line, on top of `ingest`, `worker` and `sextant`."""
