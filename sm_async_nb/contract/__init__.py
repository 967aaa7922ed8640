"""What the client and the emulated service must agree on: the API's rules, AWS's names, the
service's defaults and expiry rule, where results go, and the SNS message format."""
