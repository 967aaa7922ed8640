"""The magics through an inference router in a real ipykernel (SPEC §20): ``%%invoke_async ROUTER
--routing-target T``, ``%invoke_async ROUTER VAR --routing-target T`` as a job, ``%sm_async router NAME``,
and a mistake answered in one line. The kernel reaches the local stack only through the environment
(``stack.env``: AWS_ENDPOINT_URL_SAGEMAKER_INFERENCE_ROUTER_RUNTIME and the others), as any boto3 would."""

from __future__ import annotations

import time

from sm_async_nb.local import LocalStack


def test_the_magics_send_through_a_router(kernels, tmp_path):
    with LocalStack(endpoint_name="kern-a") as stack:
        stack.add_endpoint("kern-b")
        sm = stack.boto3_client("sagemaker")
        sm.create_inference_router(InferenceRouterName="kern-router", RoutingTargets=[{
            "Name": "main",
            "Destinations": [{"ResourceArn": f"arn:aws:sagemaker:{stack.region}:123456789012:endpoint/{name}"}
                             for name in ("kern-a", "kern-b")],
            "AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": f"s3://{stack.input_bucket}/routed/",
                                                      "S3FailurePath": f"s3://{stack.input_bucket}/routed-f/"}}}])
        while sm.describe_inference_router(InferenceRouterName="kern-router")["Status"] != "InService":
            time.sleep(0.05)
        kernel = kernels({**stack.env, "SM_ASYNC_NB_JOURNAL_PATH": str(tmp_path / "journal.sqlite3")})
        kernel.run("%load_ext sm_async_nb")

        sent = kernel.run("%%invoke_async kern-router --routing-target main --label routed --accept text/csv\n"
                          "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
        assert "to 'kern-router/main'" in sent and "input: s3://" in sent
        kernel.run("%sm_async wait routed --timeout 60\n%sm_async result routed -o df\n"
                   "assert df[0].tolist() == ['setosa', 'virginica'], df")
        kernel.run("import pandas as pd\nframe = pd.DataFrame([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]] * 4)\n"
                   "job = %invoke_async kern-router frame --routing-target main --rows-per-request 1 "
                   "--max-pending auto --accept text/csv --label routed-job\n"
                   "job.wait(timeout=90)\nassert job.status_counts() == {'COMPLETED': 8}, job.status_counts()\n"
                   "assert job.result()[0].tolist() == ['setosa', 'virginica'] * 4")
        outputs = [r["output_location"] for r in stack.records(router_name="kern-router")]
        assert len(outputs) == 9 and all(o.startswith(f"s3://{stack.input_bucket}/routed/") for o in outputs)
        assert {r["endpoint_name"] for r in stack.records(router_name="kern-router")} == {"kern-a", "kern-b"}

        shown = kernel.run("%sm_async router kern-router --max-age 0")
        assert "inference router kern-router: InService" in shown
        assert "kern-a: Routable; InService, instances 1/1" in shown and "kern-b: Routable" in shown
        listed = kernel.run("frame = %sm_async list\nprint(sorted(set(frame['endpoint_name'])))")
        assert "['kern-router/main']" in listed

        error = kernel.execute("%%invoke_async kern-router --routing-target main --inline\n1,2\n",
                               allow_errors=True).error
        assert error["ename"] == "ValidationError" and error["traceback"] == [f"ValidationError: {error['evalue']}"]
        assert "InvokeInferenceRouterAsync takes the input from S3" in error["evalue"]
        error = kernel.execute("%sm_async router nobody", allow_errors=True).error
        assert error["traceback"] == [f"{error['ename']}: {error['evalue']}"]
        assert 'Could not find inference router "arn:aws:sagemaker' in error["evalue"]
