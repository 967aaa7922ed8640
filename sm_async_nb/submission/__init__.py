"""Submission, in data-flow order: ``prepare`` (validate, encode, decide the journal row),
``batches`` (many payloads as one batch), ``inputs`` (where inputs go), ``sender`` (journal →
upload → invoke from the worker pool, Ctrl-C safe) and ``owners`` (rows whose submitter died)."""
