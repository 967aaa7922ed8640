"""Submission, in data-flow order: ``options`` (every submit option, its defaults, checked once before
any I/O), ``plans`` (one plan per kind of source: ids, the batch row, shape checks, the window;
``s3_sources``, ``datasets`` and ``dataset_files`` read the sources), ``prepare`` (one request:
encode or take the user's S3 object, validate, decide the journal row; ``inputs``: where inputs go),
``runner`` (the one runner: journal → hand to the pool → wait, one stop signal, Ctrl-C safe),
``sender`` (one request on a worker: upload → invoke → journal), ``resubmission`` (resubmit() as a
plan) and ``owners`` (rows whose submitter died)."""
