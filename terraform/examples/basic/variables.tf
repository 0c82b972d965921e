variable "name" {
  description = "Name of the log deployment; prefixes every resource name."
  type        = string
  default     = "stelae-basic"
}

variable "region" {
  description = "AWS region to deploy into. CloudFront is global; everything else lives here."
  type        = string
  default     = "us-east-1"
}

variable "lambda_zip" {
  description = "Path to the deployment zip printed by `python terraform/build_lambda.py` (one package holds both handlers)."
  type        = string
}

variable "signing_key_parameter_name" {
  description = "Name of the SSM SecureString parameter holding the signing key (you create it with `aws ssm put-parameter`). Null: /<name>/signing-key."
  type        = string
  default     = null
}

variable "mldsa_verifier_key" {
  description = "Optional: the `mldsa_vkey` printed by `stelae init --mldsa --json` (public); the log then also signs its checkpoints with that ML-DSA-44 key. Null: Ed25519 alone."
  type        = string
  default     = null
}

variable "mldsa_signing_key_parameter_name" {
  description = "Name of the SSM SecureString parameter holding the ML-DSA-44 key (stelae-data/signing-mldsa.key). Null: /<name>/mldsa-signing-key."
  type        = string
  default     = null
}

variable "verifier_key" {
  description = "The `vkey` printed by `stelae init --json` (public). The log's origin is its name."
  type        = string
}

variable "alarms" {
  description = "Create the module's CloudWatch alarms even without an alarm_email (USD 0.40/month)."
  type        = bool
  default     = false
}

variable "alarm_email" {
  description = "Email address subscribed to the alarms' SNS topic. Null creates no topic and no alarms (an idle log then costs nothing but storage)."
  type        = string
  default     = null
}

variable "api_access_log" {
  description = "Keep the HTTP API's access log in CloudWatch Logs (a line per request, about USD 0.12 per million requests). Off: no per-request IP/status records; API Gateway's metrics stay."
  type        = bool
  default     = false
}

variable "bucket_force_destroy" {
  description = "Let `terraform destroy` delete a bucket that still holds a log. Only for throwaway logs."
  type        = bool
  default     = false
}


variable "cloudfront_retain_on_delete" {
  description = "On destroy, only disable the CloudFront distribution (delete it by hand later) rather than wait for its deletion."
  type        = bool
  default     = false
}

################################################################################
# Emulator settings (moto, LocalStack). Leave all of them at their defaults for real AWS.
################################################################################

variable "aws_endpoint_url" {
  description = "One endpoint URL for every AWS service, for an emulator such as moto's server mode. Null (the default) talks to real AWS."
  type        = string
  default     = null
}

variable "aws_access_key_id" {
  description = "Static access key, only for an emulator (e.g. \"testing\"). Null uses the normal credential chain."
  type        = string
  default     = null
}

variable "aws_secret_access_key" {
  description = "Static secret key, only for an emulator. Null uses the normal credential chain."
  type        = string
  default     = null
  sensitive   = true
}

variable "emulator_compatible" {
  description = "Work around APIs the emulator lacks: no CloudFront cache/response headers policies (legacy TTLs instead), no waiting for CloudFront deployment, no RedriveAllowPolicy on the dead-letter queue, no bucket policy statement refusing plain HTTP (the emulator speaks only HTTP). Never true on real AWS."
  type        = bool
  default     = false
}

variable "explorer_dir" {
  description = "The browser explorer's files to upload beside the log (docs/explorer.md). Null: this checkout's `stelae/explorer`."
  type        = string
  default     = null
}

variable "write_front_door" {
  description = "What receives writes: \"api_gateway\" (an HTTP API, the default) or \"function_url\" (a Lambda Function URL: no per-request charge, but no throttling, access log or custom domain; terraform/README.md, Cost)."
  type        = string
  default     = "api_gateway"
}

variable "sequencer_trigger" {
  description = "What starts the sequencer: \"event_source_mapping\" (the default: SQS pollers, billed while idle) or \"writer_invoke\" (each write invokes it, an EventBridge rule sweeps every sequencer_sweep_minutes; nothing polls an idle log; terraform/README.md, \"Waking the sequencer\")."
  type        = string
  default     = "event_source_mapping"
}

variable "sequencer_sweep_minutes" {
  description = "With sequencer_trigger = \"writer_invoke\": minutes between the sweeps that drain whatever a lost wake left."
  type        = number
  default     = 10
}
