"""AWS access: boto3 clients with one retry policy and error classification, S3 URIs, pyarrow
filesystems for the same target."""
