output "witness_url" {
  description = "With witness_enabled: the witness's URL, its submission and monitoring prefix (a policy line `witness NAME VKEY <witness_url>`). Null otherwise."
  value       = var.witness_enabled ? trimsuffix(aws_apigatewayv2_stage.witness[0].invoke_url, "/") : null
}

output "witness_function_name" {
  description = "With witness_enabled: the witness Lambda function. Null otherwise."
  value       = var.witness_enabled ? aws_lambda_function.witness[0].function_name : null
}

output "witness_key_parameter_name" {
  description = "With witness_enabled: the SSM SecureString parameter that must hold the witness key before its first request. Null otherwise."
  value       = var.witness_enabled ? local.witness_key_parameter : null
}

output "put_witness_key_command" {
  description = "With witness_enabled: stores the key file written by `stelae witness init --data witness-data` as the SecureString (add --key-id for a customer-managed KMS key). Null otherwise."
  value       = var.witness_enabled ? "aws ssm put-parameter --name '${local.witness_key_parameter}' --type SecureString --value file://witness-data/witness.key" : null
}
