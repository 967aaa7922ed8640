"""(d) Load N finished outputs into one DataFrame: batch.result() vs get_object + pd.read_csv per
output, one after the other, then pd.concat; and vs the same from a raw thread pool (the practical
limit). The outputs are made once (without latency) and loaded at each latency."""

from __future__ import annotations

from sm_async_nb import InvocationBatch

from ..baselines import load_pooled, load_sequential
from ..config import TARGET_LATENCY_MS, Sizes
from ..harness import ECHO, Bench, Phase, Sampled, csv_payloads, interleaved
from ..report import Check, Row, ratio, seconds

TITLE = "Load {n} outputs into one DataFrame"


def run(bench: Bench) -> list[Row]:
    sizes = bench.sizes
    with bench.phase(0) as phase:
        client = phase.client()
        batch = client.submit_many(ECHO, csv_payloads(sizes.payloads), content_type="text/csv")
        phase.settle(client)
        return [_at(phase, batch, latency, sizes) for latency in sizes.latencies]


def _at(phase: Phase, batch: InvocationBatch, latency: int, sizes: Sizes) -> Row:
    phase.set_latency(latency)
    outputs = [r.output_location or "" for r in batch.parts()]
    s3 = phase.boto3("s3")
    assert len(batch.result()) == sizes.payloads, "every output should load as one row"
    sequential = Sampled(lambda part: load_sequential(s3, part), outputs, sizes.seq_sample, sizes.repeats)
    with phase.raw_pool() as pool:
        load_pooled(pool, s3, outputs[:sizes.workers])
        times, rounds = interleaved({"ours": batch.result, "raw_pool": lambda: load_pooled(pool, s3, outputs),
                             "sequential": sequential}, sizes.repeats)
    times["sequential"] = sequential.scale(times["sequential"])
    vs_seq, vs_pool = times["sequential"] / times["ours"], times["raw_pool"] / times["ours"]
    checks = [Check("≥ 8× sequential", vs_seq, vs_seq >= 8)] if latency == TARGET_LATENCY_MS else []
    return Row("d", TITLE.format(n=sizes.payloads), latency, ours=f"batch.result() {seconds(times['ours'])}",
               baselines=f"sequential get + read_csv + concat {seconds(times['sequential'])}; "
                         f"raw pool ({sizes.workers} threads) {seconds(times['raw_pool'])}",
               ratios=f"{ratio(vs_seq)} sequential; {ratio(vs_pool)} raw pool", checks=checks,
               data={"ours_s": times["ours"], "raw_pool_s": times["raw_pool"], "sequential_s": times["sequential"],
                     "outputs": sizes.payloads, "sequential_items_timed": sequential.timed_items,
                     "workers": sizes.workers, "rounds_s": rounds,
                     "sequential_round_items": sequential.size})
