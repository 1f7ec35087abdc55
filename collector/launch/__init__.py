"""`collector launch`: run a config's experiments on EC2 GPU instances it provisions, then land their raw rows here.

Every AWS call lives in collector.launch.aws; this package's other modules never import boto3.
"""
