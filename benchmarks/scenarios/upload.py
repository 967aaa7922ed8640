"""(i) One large local file as a payload: ``client.submit(endpoint, Path(...))`` streams it through
a multipart upload; measured in a fresh process, its peak RSS above the process's own baseline,
side by side with the naive ``put_object(Body=path.read_bytes())``.

Run as ``python -m benchmarks.scenarios.upload CONFIG_JSON`` it is one of those child processes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..children import child_client, run_child
from ..report import Check, Row, seconds
from .memory import MB, _maxrss, _reset_peak, _rss

if TYPE_CHECKING:
    from ..harness import Bench

MODULE = "benchmarks.scenarios.upload"
TARGET_MB = 64


def run(bench: Bench) -> list[Row]:
    size = bench.sizes.upload_bytes
    with bench.phase(0) as phase:
        source = phase.workdir / "large.bin"
        with open(source, "wb") as out:  # incompressible-looking, written 8 MB at a time
            block = os.urandom(8 * MB)
            for _ in range(size // len(block)):
                out.write(block)
            out.write(block[:size % len(block)])
        held = phase.held_endpoint()
        config = {"source": str(source), "journal": str(phase.workdir / "upload.sqlite3"),
                  "prefix": f"s3://{phase.stack.input_bucket}/inputs/", "urls": phase.stack.endpoint_urls,
                  "region": phase.stack.region, "endpoint": held, "bucket": phase.stack.input_bucket}
        env = {**os.environ, **phase.stack.env, "SM_ASYNC_NB_HOME": str(phase.workdir / "home")}
        ours = run_child(MODULE, {**config, "mode": "submit"}, env, timeout=1800)
        naive = run_child(MODULE, {**config, "mode": "put_object"}, env, timeout=1800)
        source.unlink()
    return [Row("i", f"One {size / 1e6:,.0f} MB file as a payload", None,
                ours=f"peak RSS +{ours['peak_delta_bytes'] / MB:.0f} MB, {seconds(ours['seconds'])}",
                baselines=f"put_object(read_bytes()) +{naive['peak_delta_bytes'] / MB:.0f} MB, "
                          f"{seconds(naive['seconds'])}",
                ratios=f"{naive['peak_delta_bytes'] / max(1, ours['peak_delta_bytes']):.0f}× less memory",
                checks=[Check(f"peak RSS ≤ {TARGET_MB} MB", ours["peak_delta_bytes"] / MB,
                              ours["peak_delta_bytes"] <= TARGET_MB * MB)],
                data={"ours": ours, "put_object": naive})]


# --- the child process ---------------------------------------------------------------------------

def child(config: dict[str, Any]) -> dict[str, Any]:
    import gc

    import boto3

    client = child_client(config)
    s3 = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                       region_name=config["region"]).client("s3", endpoint_url=config["urls"]["s3"])
    gc.collect()
    base = _rss()
    _reset_peak()
    started = time.perf_counter()
    if config["mode"] == "submit":
        client.submit(config["endpoint"], Path(config["source"]), content_type="application/octet-stream")
    else:
        s3.put_object(Bucket=config["bucket"], Key="naive/large.bin", Body=Path(config["source"]).read_bytes())
    elapsed = time.perf_counter() - started
    answer = {"mode": config["mode"], "peak_delta_bytes": _maxrss() - base, "seconds": elapsed,
              "bytes": Path(config["source"]).stat().st_size}
    client.close()
    return answer


if __name__ == "__main__":
    print(json.dumps(child(json.loads(sys.argv[1]))))
