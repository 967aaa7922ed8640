"""Side-by-side benchmarks of sm_async_nb against the naive per-object approach and raw boto3.

Run ``python -m benchmarks`` (full, a few minutes) or ``python -m benchmarks --quick`` (seconds,
small sizes). Every scenario runs on the embedded local stack with emulated per-request network
latency; results are ratios measured in the same run, written to ``benchmarks/results/``.
"""
