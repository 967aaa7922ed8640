"""Tracking: the poller (``tracker``), the S3 probe that finds outputs by prefix (``probe``),
event mode through SNS/SQS (``sqs_events``) and the in-process status bus (``bus``)."""
