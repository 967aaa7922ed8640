"""(b) Inline vs S3: submit_many(..., inline=True) (one request each) vs the S3 path (two)."""

from __future__ import annotations

from ..config import TARGET_LATENCY_MS
from ..harness import Bench, csv_payloads, interleaved, per_latency
from ..report import Check, Row, ratio, seconds

TITLE = "Submit {n} CSV payloads inline vs S3"


def _at(bench: Bench, latency: int) -> Row:
    sizes = bench.sizes
    payloads = csv_payloads(sizes.payloads)
    with bench.phase(latency) as phase:
        held = phase.held_endpoint()
        client = phase.client()
        for inline in (False, True):
            client.submit_many(held, payloads[:sizes.workers], content_type="text/csv", inline=inline)
        times, rounds = interleaved({
            "inline": lambda: client.submit_many(held, payloads, content_type="text/csv", inline=True),
            "s3_path": lambda: client.submit_many(held, payloads, content_type="text/csv"),
        }, sizes.repeats)
    speedup = times["s3_path"] / times["inline"]
    checks = [Check("inline ≥ 1.7× S3 path", speedup, speedup >= 1.7)] if latency == TARGET_LATENCY_MS else []
    return Row("b", TITLE.format(n=sizes.payloads), latency,
               ours=f"inline {seconds(times['inline'])} ({sizes.payloads / times['inline']:.0f}/s)",
               baselines=f"S3 path {seconds(times['s3_path'])}", ratios=f"{ratio(speedup)} S3 path",
               checks=checks, data={"inline_s": times["inline"], "s3_path_s": times["s3_path"],
                                    "payloads": sizes.payloads, "rounds_s": rounds})


run = per_latency(_at)
