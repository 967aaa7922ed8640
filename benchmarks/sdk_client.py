"""Run by the SageMaker Python SDK v2's own interpreter (a separate venv; sm_async_nb is not
imported): time ``AsyncPredictor.predict_async`` called once per payload, one after the other,
against the local stack named by the AWS_ENDPOINT_URL_* environment.

``python sdk_client.py '{"endpoint": ..., "bucket": ..., "payloads": [...], "warm": 2}'`` prints
one JSON line: {"seconds": ..., "count": ..., "sdk_version": ...}.
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
    for payload in payloads:
        predictor.predict_async(data=payload)
    print(json.dumps({"seconds": time.perf_counter() - started, "count": len(payloads),
                      "sdk_version": sagemaker.__version__}))


if __name__ == "__main__":
    main()
