"""Run by the SageMaker Python SDK v2's own interpreter (a separate venv; sm_async_nb is not
imported): time ``AsyncPredictor.predict_async`` called once per payload, one after the other,
against the local stack named by the AWS_ENDPOINT_URL_* environment; then, right after, time
collecting every result the SDK's way: ``AsyncInferenceResponse.get_result(WaiterConfig())``
(its default waiter settings) for each response in order.

``python sdk_client.py '{"endpoint": ..., "bucket": ..., "payloads": [...], "warm": 2}'`` prints
one JSON line: {"seconds": ..., "collect_seconds": ..., "count": ..., "sdk_version": ...}.
"""

import json
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore")


def main():
    args = json.loads(sys.argv[1])
    import boto3
    import sagemaker
    from sagemaker.async_inference import WaiterConfig
    from sagemaker.predictor import Predictor
    from sagemaker.predictor_async import AsyncPredictor
    from sagemaker.serializers import CSVSerializer

    boto_session = boto3.Session(region_name=os.environ["AWS_DEFAULT_REGION"])
    session = sagemaker.Session(boto_session=boto_session, default_bucket=args["bucket"])
    predictor = AsyncPredictor(Predictor(args["endpoint"], sagemaker_session=session, serializer=CSVSerializer()))
    payloads = args["payloads"]
    for payload in payloads[:args.get("warm", 2)]:
        predictor.predict_async(data=payload)
    started = time.perf_counter()
    responses = [predictor.predict_async(data=payload) for payload in payloads]
    submitted = time.perf_counter()
    results = [response.get_result(WaiterConfig()) for response in responses]
    collected = time.perf_counter()
    assert len(results) == len(payloads)
    print(json.dumps({"seconds": submitted - started, "collect_seconds": collected - submitted,
                      "count": len(payloads), "sdk_version": sagemaker.__version__}), flush=True)
    # get_result(WaiterConfig()) leaves a thread per response waiting (up to 60 x 15 s) for the
    # failure object that never comes; they would keep this interpreter alive for 15 minutes.
    os._exit(0)


if __name__ == "__main__":
    main()
