"""Managed AWS endpoints: Bedrock (Converse, ConverseStream) and SageMaker real-time endpoints (invoke, deploy and
clean up), sent through boto3 so requests are signed, parsed and failed exactly as the SDK does."""
