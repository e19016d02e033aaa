"""LabGuard's Lambda function: the whole asset, self-contained (stdlib and boto3 only)."""
