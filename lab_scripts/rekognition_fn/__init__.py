"""The Lambda function of LabRekognition. This folder is the Lambda asset: stdlib and boto3 only, no labkit."""
