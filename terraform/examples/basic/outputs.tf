output "write_url" {
  description = "Base URL of the write API (`stelae upload --server`)."
  value       = module.stelae.write_url
}

output "read_url" {
  description = "The log's URL on CloudFront (`stelae --log-url`; `curl <read_url>/checkpoint`)."
  value       = module.stelae.read_url
}

output "bucket_name" {
  description = "The private bucket holding the log."
  value       = module.stelae.bucket_name
}

output "signing_key_parameter_name" {
  description = "SSM SecureString parameter that must hold the signing key before the first write."
  value       = module.stelae.signing_key_parameter_name
}

output "put_signing_key_command" {
  description = "Stores the key file written by `stelae init` as the SecureString parameter."
  value       = module.stelae.put_signing_key_command
}

output "verifier_key" {
  description = "The verifier key, if given as a variable."
  value       = module.stelae.verifier_key
}

output "verifier_key_command" {
  description = "Prints the log's verifier key (public) from the sequencer's configuration."
  value       = module.stelae.verifier_key_command
}

output "cloudfront_distribution_arn" {
  description = "The distribution the bucket policy admits."
  value       = module.stelae.cloudfront_distribution_arn
}

output "queue_url" {
  description = "Queue of submissions waiting to be sequenced."
  value       = module.stelae.queue_url
}

output "dead_letter_queue_url" {
  description = "Dead-letter queue of submissions that could not be sequenced."
  value       = module.stelae.dead_letter_queue_url
}

output "write_function_name" {
  description = "The write Lambda function."
  value       = module.stelae.write_function_name
}

output "sequencer_function_name" {
  description = "The sequencer Lambda function."
  value       = module.stelae.sequencer_function_name
}
