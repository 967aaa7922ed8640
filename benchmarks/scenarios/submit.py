"""(a) Submit N small CSV payloads: submit_many vs sequential upload + invoke vs a raw thread pool."""

from __future__ import annotations

from ..baselines import PutThenInvoke
from ..config import TARGET_LATENCY_MS
from ..harness import Bench, Sampled, csv_payloads, interleaved, per_latency
from ..report import Check, Row, ratio, seconds

TITLE = "Submit {n} CSV payloads (S3 path)"


def _at(bench: Bench, latency: int) -> Row:
    sizes = bench.sizes
    payloads = csv_payloads(sizes.payloads)
    with bench.phase(latency) as phase:
        held = phase.held_endpoint()
        client = phase.client()
        naive = PutThenInvoke(phase.boto3("s3"), phase.boto3("sagemaker-runtime"), held, phase.stack.input_bucket)
        sequential = Sampled(naive.sequential, payloads, sizes.seq_sample, sizes.repeats)
        with phase.raw_pool() as pool:
            warm = payloads[:sizes.workers]
            client.submit_many(held, warm, content_type="text/csv")
            naive.pooled(pool, warm)
            times, rounds = interleaved({
                "ours": lambda: client.submit_many(held, payloads, content_type="text/csv"),
                "raw_pool": lambda: naive.pooled(pool, payloads),
                "sequential": sequential,
            }, sizes.repeats)
    times["sequential"] = sequential.scale(times["sequential"])
    vs_seq, vs_pool = times["sequential"] / times["ours"], times["raw_pool"] / times["ours"]
    checks = [Check("≥ 10× sequential", vs_seq, vs_seq >= 10),
              Check("≥ 0.8× raw pool", vs_pool, vs_pool >= 0.8)] if latency == TARGET_LATENCY_MS else []
    return Row("a", TITLE.format(n=sizes.payloads), latency,
               ours=f"{seconds(times['ours'])} ({sizes.payloads / times['ours']:.0f}/s)",
               baselines=f"sequential {seconds(times['sequential'])}; raw pool ({sizes.workers} threads) "
                         f"{seconds(times['raw_pool'])}",
               ratios=f"{ratio(vs_seq)} sequential; {ratio(vs_pool)} raw pool", checks=checks,
               data={"ours_s": times["ours"], "raw_pool_s": times["raw_pool"], "sequential_s": times["sequential"],
                     "sequential_items_timed": sequential.timed_items, "payloads": sizes.payloads,
                     "workers": sizes.workers, "rounds_s": rounds,
                     "sequential_round_items": sequential.size})


run = per_latency(_at)
