output "write_url" {
  description = "Base URL of the write API (what `stelae upload --server` and Rekor clients take); entries are posted to <write_url>/api/v1/log/entries or /api/v2/log/entries. The HTTP API's stage URL, or the Function URL with write_front_door = \"function_url\"."
  value       = local.api_gateway ? trimsuffix(aws_apigatewayv2_stage.this[0].invoke_url, "/") : trimsuffix(aws_lambda_function_url.write[0].function_url, "/")
}

output "read_url" {
  description = "The log's tlog-tiles prefix on CloudFront (what `stelae --log-url` takes): <read_url>/checkpoint, <read_url>/tile/..."
  value       = "https://${aws_cloudfront_distribution.this.domain_name}"
}

output "bucket_name" {
  description = "Name of the private S3 bucket that holds the log."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the private S3 bucket that holds the log."
  value       = aws_s3_bucket.this.arn
}

output "signing_key_parameter_name" {
  description = "Name of the SSM SecureString parameter that must hold the log's signing key before the first write."
  value       = local.signing_key_parameter
}

output "put_signing_key_command" {
  description = "Command that stores the signing key (the PRIVATE+KEY+... string written by `stelae init`) as a SecureString; run it once, from the directory holding the key file (add --key-id for a customer-managed KMS key)."
  value       = "aws ssm put-parameter --name '${local.signing_key_parameter}' --type SecureString --value file://stelae-data/signing.key"
}

output "put_mldsa_signing_key_command" {
  description = "With mldsa_verifier_key: the command that stores the ML-DSA-44 key (stelae-data/signing-mldsa.key) as a SecureString; null without it."
  value       = local.mldsa ? "aws ssm put-parameter --name '${local.mldsa_signing_key_parameter}' --type SecureString --value file://stelae-data/signing-mldsa.key" : null
}

output "verifier_key" {
  description = "The log's verifier key (public): what readers pass to `stelae --vkey`."
  value       = var.verifier_key
}

output "verifier_key_command" {
  description = "Command that prints the deployed log's verifier key (public), for anyone with lambda:GetFunctionConfiguration but not this Terraform state."
  value       = "aws lambda get-function-configuration --function-name '${aws_lambda_function.sequencer.function_name}' --query Environment.Variables.STELAE_VKEY --output text"
}

output "cloudfront_distribution_id" {
  description = "ID of the CloudFront distribution (for invalidations, which a tlog never needs for tiles)."
  value       = aws_cloudfront_distribution.this.id
}

output "cloudfront_distribution_arn" {
  description = "ARN of the CloudFront distribution; the bucket policy admits only it."
  value       = aws_cloudfront_distribution.this.arn
}

output "api_id" {
  description = "ID of the HTTP API (null with write_front_door = \"function_url\")."
  value       = local.api_gateway ? aws_apigatewayv2_api.this[0].id : null
}

output "queue_url" {
  description = "URL of the SQS queue of submissions waiting to be sequenced."
  value       = aws_sqs_queue.this.url
}

output "dead_letter_queue_url" {
  description = "URL of the dead-letter queue (submissions that failed sequencing max_receive_count times)."
  value       = aws_sqs_queue.dlq.url
}

output "write_function_name" {
  description = "Name of the write Lambda function."
  value       = aws_lambda_function.write.function_name
}

output "sequencer_function_name" {
  description = "Name of the sequencer Lambda function."
  value       = aws_lambda_function.sequencer.function_name
}

output "write_role_arn" {
  description = "ARN of the write function's IAM role."
  value       = aws_iam_role.write.arn
}

output "sequencer_role_arn" {
  description = "ARN of the sequencer function's IAM role."
  value       = aws_iam_role.sequencer.arn
}

output "sequencer_sweep_rule_name" {
  description = "With sequencer_trigger = \"writer_invoke\": the EventBridge rule that sweeps the queue every sequencer_sweep_minutes (disable it only if something else drains the queue); null with the event source mapping."
  value       = local.writer_invoke ? aws_cloudwatch_event_rule.sweep[0].name : null
}
