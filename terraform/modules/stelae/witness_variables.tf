################################################################################
# The sequencer's witness policy (docs/witness.md)
################################################################################

variable "witness_policy" {
  description = "The text of a C2SP tlog-policy file (https://c2sp.org/tlog-policy): the sequencer publishes a checkpoint only once the cosignatures of its witnesses (those with a URL) satisfy the quorum. Public. Uploaded to the private `.state/config/witness-policy` object, its SHA-256 in the sequencer's environment (STELAE_WITNESS_POLICY_SHA256): a policy can outgrow Lambda's 4 KB environment. Null: no witnesses."
  type        = string
  default     = null

  validation {
    condition     = var.witness_policy == null ? true : length(regexall("(?m)^quorum[ \t]", var.witness_policy)) == 1
    error_message = "witness_policy must be a tlog-policy file with exactly one `quorum` line."
  }
}

variable "witness_fail_open" {
  description = "With witness_policy: publish a checkpoint without the quorum once witness_timeout_seconds have passed (and log a warning) instead of leaving the batch in the queue to be retried. False (fail-closed) never publishes an under-witnessed checkpoint."
  type        = bool
  default     = false
}

variable "witness_timeout_seconds" {
  description = "With witness_policy: how long the sequencer waits for witnesses' cosignatures on one checkpoint. Must stay well under sequencer_timeout_seconds."
  type        = number
  default     = 10

  validation {
    condition     = var.witness_timeout_seconds > 0 && var.witness_timeout_seconds <= 60
    error_message = "witness_timeout_seconds must be between 0 (exclusive) and 60."
  }
}

################################################################################
# An optional serverless witness (docs/witness.md, "On AWS")
################################################################################

variable "witness_enabled" {
  description = "Deploy a C2SP tlog-witness (https://c2sp.org/tlog-witness) beside the log: its own HTTP API and function (handler `stelae.lambda.witness.handler`, in the same package), its per-log state in this bucket under `.state/witness/`, written with S3 conditional writes."
  type        = bool
  default     = false
}

variable "witness_log_list" {
  description = "With witness_enabled: the logs the witness cosigns, in the witness network's logs/v0 format (vkey, origin, qpd per log; docs/witness.md). Uploaded to `.state/witness/log-list`; its SHA-256 is in the function's environment, so a new list means new containers."
  type        = string
  default     = null

  validation {
    condition     = var.witness_log_list == null ? true : length(regexall("(?m)^logs/v0[ \t]*$", var.witness_log_list)) == 1
    error_message = "witness_log_list must be a logs/v0 log list (its header line is `logs/v0`)."
  }
}

variable "witness_key_parameter_name" {
  description = "Name of the SSM SecureString holding the witness's key: the witness.key file that `stelae witness init` writes, stored by the operator (output put_witness_key_command); the module only names it, as it does the log's key. Null: /<name>/witness-key."
  type        = string
  default     = null

  validation {
    condition     = var.witness_key_parameter_name == null ? true : can(regex("^/[A-Za-z0-9_.\\-/]+$", var.witness_key_parameter_name))
    error_message = "witness_key_parameter_name must be a fully qualified parameter name starting with /."
  }
}

variable "witness_key_kms_key_arn" {
  description = "ARN of the customer-managed KMS key the witness key parameter was encrypted with; the witness is granted kms:Decrypt on it. Null: the account's aws/ssm key."
  type        = string
  default     = null
}

variable "witness_verifier_key" {
  description = "Optional: the witness's verifier key (what `stelae witness init` prints). The function refuses a key in Parameter Store that does not match it."
  type        = string
  default     = null
}

variable "witness_function_memory_mb" {
  description = "Memory of the witness function, in MB. One add-checkpoint is a signature check, a proof check, one GET and one PUT."
  type        = number
  default     = 256
}

variable "witness_function_timeout_seconds" {
  description = "Timeout of the witness function, in seconds (API Gateway gives up after 30)."
  type        = number
  default     = 10
}

variable "witness_api_throttling_burst_limit" {
  description = "The witness API's burst limit (requests). Each log's own budget is its qpd in the log list."
  type        = number
  default     = 20
}

variable "witness_api_throttling_rate_limit" {
  description = "The witness API's steady-state rate limit (requests per second)."
  type        = number
  default     = 10
}
