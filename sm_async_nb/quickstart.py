"""`sm-async-nb quickstart`: the notebook quickstart as a script, end to end on the local stack.

No AWS account, no Jupyter: it starts the embedded stack with the iris demo model, sends CSV
rows and a DataFrame split into several requests, follows them, and prints the predictions.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

IRIS_CSV = "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n5.9,3.0,4.2,1.5\n"


def main(delay: float = 0.5) -> int:
    import pandas as pd
    from sklearn.datasets import load_iris

    from .local.stack import LocalStack

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as home, LocalStack(delay=delay, concurrency=2) as stack, \
            stack.client(journal_path=Path(home) / "journal.sqlite3") as client:
        print(f"Local stack up: endpoint {stack.endpoint_name!r}, inputs under {client.input_prefix()}")

        inv = client.submit(stack.endpoint_name, IRIS_CSV, accept="text/csv", label="three-flowers")
        print(f"1. Submitted {inv.inference_id} (input {inv.input_location}); status {inv.status.value}")
        predictions = inv.wait(timeout=60).result()
        predictions.columns = ["species", "probability"]
        print(f"   {inv.status.value}, output written within {max(1, round(inv.latency))}s "
              f"(S3 timestamps have 1 s resolution):\n{predictions.to_string()}\n")

        iris = load_iris(as_frame=True)
        sample = iris.frame.sample(30, random_state=0)
        batch = client.submit_dataframe(stack.endpoint_name, sample[iris.feature_names], rows_per_request=10,
                                        accept="text/csv", label="iris-sample")
        print(f"2. Submitted a 30-row DataFrame as {len(batch)} requests ({batch.batch_id})")
        while not batch.done:
            print(f"   {batch.refresh()}")
            time.sleep(0.5)
        scored = batch.result()
        truth = sample["target"].map(dict(enumerate(iris.target_names)))
        accuracy = (scored[0] == truth).mean()
        print(f"   {batch.status_counts()}; result aligned to the input index: "
              f"{scored.index.equals(sample.index)}; accuracy {accuracy:.0%}")
        print(pd.concat([sample[iris.feature_names], scored[0].rename("predicted")], axis=1).head().to_string())
        print(f"\nDone in {time.perf_counter() - started:.1f}s. The notebook version, with the live panel: "
              "sm-async-nb examples DIR, then open DIR/quickstart.ipynb.")
    return 0
