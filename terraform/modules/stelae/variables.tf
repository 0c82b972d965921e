################################################################################
# Identity
################################################################################

variable "name" {
  description = "Name of this log deployment; prefixes every resource name (bucket, queues, functions, roles). Lowercase letters, digits and hyphens."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$", var.name))
    error_message = "name must be 3-40 characters of lowercase letters, digits and hyphens, not starting or ending with a hyphen."
  }
}

variable "verifier_key" {
  description = "The log's verifier key, the `vkey` printed by `stelae init --json` (`<origin>+<hash>+<base64 public key>`). Public: both functions get it as STELAE_VKEY, the log's origin is its name, and the sequencer refuses a signing key that does not match it."
  type        = string

  validation {
    condition     = can(regex("^[^+\\s]+\\+[0-9a-f]{8}\\+[A-Za-z0-9+/]+=*$", var.verifier_key)) && !startswith(var.verifier_key, "PRIVATE+KEY")
    error_message = "verifier_key must be a note verifier key (<origin>+<8 hex digits>+<base64>), never the PRIVATE+KEY signing key."
  }
}

variable "tags" {
  description = "Tags applied to every resource that supports them."
  type        = map(string)
  default     = {}
}

################################################################################
# Storage
################################################################################

variable "bucket_name" {
  description = "Name of the S3 bucket that holds the log (checkpoint, tiles, bundles, indexes, and the private `.state/` prefix). Null derives `<name>-tlog-<account id>`."
  type        = string
  default     = null
}

variable "bucket_force_destroy" {
  description = "Allow `terraform destroy` to delete the bucket with the log still in it. Leave false for a real log: its entries are meant to outlive any one deployment."
  type        = bool
  default     = false
}

variable "deny_insecure_transport" {
  description = "Add a bucket policy statement refusing plain-HTTP requests. False only for an emulator reached over plain HTTP that enforces bucket policies (moto does, and would then refuse Terraform itself)."
  type        = bool
  default     = true
}

################################################################################
# Reads: CloudFront
################################################################################

variable "immutable_path_patterns" {
  description = "CloudFront path patterns of objects that never change once written: hash tiles, partial tiles and entry bundles (`tile/`), checkpoint history (`checkpoints/`), batch records (`batch/`), lookup-index runs and manifests (`index/run/`, `index/manifest/`; docs/layout.md). Cached for a year at the edge and sent with `Cache-Control: public, max-age=31536000, immutable`."
  type        = list(string)
  default     = ["tile/*", "checkpoints/*", "batch/*", "index/run/*", "index/manifest/*"]
}

variable "explorer_dir" {
  description = "A directory holding the browser explorer's files (the package's `stelae/explorer/`, docs/explorer.md) to upload beside the log, so that the read URL shows the page at `/`; null uploads nothing."
  type        = string
  default     = null
}

variable "checkpoint_max_age_seconds" {
  description = "How long CloudFront and browsers may cache the checkpoint and every other mutable object (lookup indexes). A few seconds: a stale checkpoint only delays readers, but it must not hide growth for long."
  type        = number
  default     = 2

  validation {
    condition     = var.checkpoint_max_age_seconds >= 0 && var.checkpoint_max_age_seconds <= 10
    error_message = "checkpoint_max_age_seconds must be between 0 and 10."
  }
}

variable "not_found_cache_seconds" {
  description = "How long CloudFront caches a 404 (a tile or checkpoint that does not exist yet). Short, because the log will write it soon."
  type        = number
  default     = 1
}

variable "cors_allowed_origins" {
  description = "Browser origins allowed to read the log (CloudFront response headers policy) and to post to the write API. [\"*\"] lets any web page read it, which is what a public log wants."
  type        = list(string)
  default     = ["*"]
}

variable "cloudfront_price_class" {
  description = "CloudFront price class (PriceClass_100, PriceClass_200 or PriceClass_All)."
  type        = string
  default     = "PriceClass_100"

  validation {
    condition     = contains(["PriceClass_100", "PriceClass_200", "PriceClass_All"], var.cloudfront_price_class)
    error_message = "cloudfront_price_class must be PriceClass_100, PriceClass_200 or PriceClass_All."
  }
}

variable "create_cloudfront_policies" {
  description = "Create CloudFront cache and response headers policies (the normal case). False falls back to the legacy per-behaviour TTL settings and sends no CORS or Cache-Control override headers; it exists only for emulators (moto) that do not implement those policy APIs. Never set it false on real AWS."
  type        = bool
  default     = true
}

variable "wait_for_cloudfront_deployment" {
  description = "Wait (up to ~15 minutes) for the CloudFront distribution to reach Deployed before finishing apply."
  type        = bool
  default     = true
}

variable "cloudfront_retain_on_delete" {
  description = "On destroy, only disable the CloudFront distribution and leave it to be deleted by hand, instead of waiting (~15 minutes on AWS) for Terraform to delete it."
  type        = bool
  default     = false
}

################################################################################
# Writes: HTTP API and functions
################################################################################

variable "write_lambda_zip" {
  description = "Path to the deployment zip of the write function (built by terraform/build_lambda.py). Handler `stelae.lambda.write.handler`."
  type        = string
}

variable "sequencer_lambda_zip" {
  description = "Path to the deployment zip of the sequencer function. Null uses write_lambda_zip (one package holds both handlers). Handler `stelae.lambda.sequence.handler`."
  type        = string
  default     = null
}

variable "lambda_runtime" {
  description = "Lambda runtime; must match the --python-version the zip was built for."
  type        = string
  default     = "python3.11"
}

variable "lambda_architecture" {
  description = "Lambda instruction set; must match the architecture the zip was built for (build_lambda.py --architecture, arm64 by default: manylinux2014_aarch64 wheels). arm64 costs 20% less per GB-second than x86_64."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.lambda_architecture)
    error_message = "lambda_architecture must be x86_64 or arm64."
  }
}

variable "write_memory_mb" {
  description = "Memory of the write function, in MB. It mostly waits for its batch: benchmarks/aws_cost.py measures the handler's peak RSS (VmHWM) at 70 MB in a fresh interpreter that imports it and answers one write, so Lambda's minimum of 128 holds it with the runtime's own overhead; more only buys CPU for signature verification, which takes milliseconds."
  type        = number
  default     = 128
}

variable "write_timeout_seconds" {
  description = "Timeout of the write function, in seconds. API Gateway gives up after 30 s whatever this says."
  type        = number
  default     = 29
}

variable "sequencer_memory_mb" {
  description = "Memory of the sequencer function, in MB."
  type        = number
  default     = 1024
}

variable "sequencer_timeout_seconds" {
  description = "Timeout of the sequencer function, in seconds. The queue's visibility timeout is set to six times this, as AWS recommends for SQS event sources."
  type        = number
  default     = 120
}

variable "write_wait_seconds" {
  description = "How long a write waits for its entry to be sequenced before answering 202 instead of 201 (STELAE_WAIT_SECONDS). Keep it well under write_timeout_seconds and API Gateway's 30 s."
  type        = number
  default     = 20

  validation {
    condition     = var.write_wait_seconds >= 0 && var.write_wait_seconds <= 25
    error_message = "write_wait_seconds must be between 0 and 25 (API Gateway gives up after 30 s)."
  }
}

variable "write_poll_margin_seconds" {
  description = "How long after the batching window a write first looks for its entry (STELAE_POLL_AFTER_SECONDS = sequencer_batching_window_seconds + this): the sequencer's usual time to integrate a batch, so that one look (the checkpoint and the batch record: three GETs per write in all) usually finds it. Too short costs a GET per extra look (0.2 s apart); too long, write-function seconds. benchmarks/aws_cost.py measures the integration time (terraform/README.md, Cost)."
  type        = number
  default     = 0.5

  validation {
    condition     = var.write_poll_margin_seconds >= 0 && var.write_poll_margin_seconds <= 10
    error_message = "write_poll_margin_seconds must be between 0 and 10."
  }
}

variable "write_front_door" {
  description = "What receives writes: \"api_gateway\" (an HTTP API: stage throttling, an access log, custom domains, and only the two write routes reach the function; USD 1.00 per million requests) or \"function_url\" (a Lambda Function URL on the write function: no per-request charge and no access log, but no throttling other than the function's concurrency, no custom domain without CloudFront in front, and every path and method reaches the function, which answers 404/405 itself; terraform/README.md, Cost, compares them)."
  type        = string
  default     = "api_gateway"

  validation {
    condition     = contains(["api_gateway", "function_url"], var.write_front_door)
    error_message = "write_front_door must be \"api_gateway\" or \"function_url\"."
  }
}

variable "function_url_auth_type" {
  description = "Authorization of the Function URL (write_front_door = \"function_url\"): \"NONE\" (a public log: anyone may post, as to the HTTP API) or \"AWS_IAM\" (SigV4-signed requests from principals granted lambda:InvokeFunctionUrl)."
  type        = string
  default     = "NONE"

  validation {
    condition     = contains(["NONE", "AWS_IAM"], var.function_url_auth_type)
    error_message = "function_url_auth_type must be \"NONE\" or \"AWS_IAM\"."
  }
}

variable "api_throttling_burst_limit" {
  description = "HTTP API stage default route burst limit (requests)."
  type        = number
  default     = 100
}

variable "api_throttling_rate_limit" {
  description = "HTTP API stage default route steady-state rate limit (requests per second)."
  type        = number
  default     = 50
}

variable "api_access_log" {
  description = "Send the HTTP API's access log (one JSON line per request: request id, source IP, time, route, status, response length, latency, integration error) to a CloudWatch Logs group, /aws/apigateway/<name>, kept log_retention_days. About USD 0.12 per million requests of ingestion at us-east-1 list prices (USD 0.50 per GB), plus its storage. Off (the default): no log group and no per-request IP or status records; API Gateway's own CloudWatch metrics (request count, 4xx, 5xx, latency) stay."
  type        = bool
  default     = false
}

variable "write_environment" {
  description = "Extra environment variables for the write function (configuration knobs only). Never put key material here: the signing key lives in Secrets Manager."
  type        = map(string)
  default     = {}
}

variable "sequencer_environment" {
  description = "Extra environment variables for the sequencer function (batch sizes, which lookup indexes to build). Never put key material here."
  type        = map(string)
  default     = {}
}

################################################################################
# Queue
################################################################################

variable "sequencer_batch_size" {
  description = "Most queue messages (submissions) handed to one sequencer invocation; one invocation publishes at most one checkpoint."
  type        = number
  default     = 256

  validation {
    condition     = var.sequencer_batch_size >= 1 && var.sequencer_batch_size <= 10000
    error_message = "sequencer_batch_size must be between 1 and 10000."
  }
}

variable "sequencer_batching_window_seconds" {
  description = "How long the event source mapping gathers messages before invoking the sequencer (the batch closes on size or age, whichever comes first). Required > 0 when sequencer_batch_size > 10. Whole seconds with the mapping; with sequencer_trigger = \"writer_invoke\" the drain loop's window (STELAE_BATCH_WINDOW_SECONDS), which may be fractional (e.g. 0.5); sequencer_timeout_seconds must then be at least this + 18 s (plus witness_timeout_seconds), or the drain loop never starts a batch."
  type        = number
  default     = 1

  validation {
    condition     = var.sequencer_batching_window_seconds >= 0 && var.sequencer_batching_window_seconds <= 300
    error_message = "sequencer_batching_window_seconds must be between 0 and 300."
  }
}

variable "queue_message_retention_seconds" {
  description = "How long an unsequenced submission waits in the queue (and in the dead-letter queue) before SQS drops it."
  type        = number
  default     = 1209600
}

variable "max_receive_count" {
  description = "Deliveries of one message before it moves to the dead-letter queue. Generous, because with one sequencer at a time the event source mapping is sometimes throttled, and each throttled delivery counts."
  type        = number
  default     = 20
}

variable "create_dlq_redrive_allow_policy" {
  description = "Restrict the dead-letter queue to this log's queue (RedriveAllowPolicy). False only for emulators that do not implement it (moto ignores the attribute, so Terraform would wait forever for it to appear)."
  type        = bool
  default     = true
}

################################################################################
# Signing key
################################################################################

variable "signing_key_parameter_name" {
  description = "Name of the SSM Parameter Store SecureString holding the log's signing key (the PRIVATE+KEY+... string from `stelae init`). The operator creates it with `aws ssm put-parameter --type SecureString` (output put_signing_key_command); the module only names it and grants the sequencer ssm:GetParameter on it, so Terraform never sees the key. A standard parameter costs nothing at rest. Null: /<name>/signing-key."
  type        = string
  default     = null

  validation {
    condition     = var.signing_key_parameter_name == null ? true : can(regex("^/[A-Za-z0-9_.\\-/]+$", var.signing_key_parameter_name))
    error_message = "signing_key_parameter_name must be a fully qualified parameter name starting with /."
  }
}

variable "mldsa_verifier_key" {
  description = "Optional: the log's ML-DSA-44 verifier key, the `mldsa_vkey` printed by `stelae init --mldsa --json`. With it the sequencer also signs every checkpoint with that key (docs/compatibility.md, \"Post-quantum log signatures\"), read from the SecureString named by mldsa_signing_key_parameter_name; only its origin+keyid prefix goes into the environment. Null: Ed25519 alone."
  type        = string
  default     = null

  validation {
    condition     = var.mldsa_verifier_key == null ? true : can(regex("^[^+\\s]+\\+[0-9a-f]{8}\\+B[g-v][A-Za-z0-9+/]+=*$", var.mldsa_verifier_key))
    error_message = "mldsa_verifier_key must be an ML-DSA-44 verifier key (<origin>+<8 hex digits>+<base64 starting with type 0x06>), never the PRIVATE+KEY signing key."
  }
}

variable "mldsa_signing_key_parameter_name" {
  description = "Name of the SSM Parameter Store SecureString holding the ML-DSA-44 key (the PRIVATE+KEY+... line of `stelae-data/signing-mldsa.key`), created by the operator like the Ed25519 one (output put_mldsa_signing_key_command); the sequencer may ssm:GetParameter it. signing_key_kms_key_arn covers both parameters. Used only with mldsa_verifier_key. Null: /<name>/mldsa-signing-key."
  type        = string
  default     = null

  validation {
    condition     = var.mldsa_signing_key_parameter_name == null ? true : can(regex("^/[A-Za-z0-9_.\\-/]+$", var.mldsa_signing_key_parameter_name))
    error_message = "mldsa_signing_key_parameter_name must be a fully qualified parameter name starting with /."
  }
}

variable "signing_key_kms_key_arn" {
  description = "ARN of the customer-managed KMS key the signing key parameter was encrypted with (`put-parameter --key-id`); the sequencer is granted kms:Decrypt on it. Null: the parameter uses the account's aws/ssm key, which needs no grant."
  type        = string
  default     = null
}


################################################################################
# Logs and alarms
################################################################################

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups of both functions and the API's access log."
  type        = number
  default     = 30
}

variable "log_level" {
  description = "Log level of both functions (Lambda's advanced logging controls, JSON format): application and system logs below it are not sent to CloudWatch Logs. \"WARN\" (the default) keeps out Lambda's own START/END/REPORT lines, which are INFO, so a successful invocation ingests nothing; errors and warnings still arrive. \"INFO\" or \"DEBUG\" brings them back (system logs stop at DEBUG; application logs accept TRACE to FATAL)."
  type        = string
  default     = "WARN"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARN"], var.log_level)
    error_message = "log_level must be DEBUG, INFO or WARN (the levels Lambda accepts for system logs)."
  }
}

variable "alarms" {
  description = "Create the four CloudWatch alarms (sequencer errors, write errors, oldest queued submission, dead-letter queue depth). Off by default: at USD 0.10 per alarm-month they would be most of an idle log's bill; turn them on for a log people rely on."
  type        = bool
  default     = false
}

variable "alarm_actions" {
  description = "ARNs (e.g. SNS topics) notified when an alarm fires or recovers."
  type        = list(string)
  default     = []
}

variable "oldest_message_alarm_seconds" {
  description = "Alarm when the oldest unsequenced submission has waited this long: the sequencer is stuck or failing."
  type        = number
  default     = 300
}

variable "sequencer_reserved_concurrency" {
  description = "Reserved concurrency of the sequencer. The event source mapping's maximum_concurrency is 2 (the smallest SQS event sources accept), and AWS documents that a reserved concurrency below the mapping's maximum concurrency makes the function throttle (throttled batches count towards max_receive_count); so this is 2 or more, or null to reserve nothing (accounts whose quota of 10 must stay unreserved): the mapping alone then caps the sequencer at 2. Two sequencers at once are correct (the batch claim and the checkpoint compare-and-swap settle every race; docs/sequencing.md). With sequencer_trigger = \"writer_invoke\" there is no mapping and any non-null value reserves 1 (one drain loop at a time); null still reserves nothing."
  type        = number
  default     = 2

  validation {
    condition     = var.sequencer_reserved_concurrency == null ? true : var.sequencer_reserved_concurrency >= 2
    error_message = "sequencer_reserved_concurrency must be null or at least 2, the event source mapping's maximum_concurrency: a smaller reservation makes Lambda throttle the mapping's invocations."
  }
}

variable "partial_tile_grace_seconds" {
  description = "Seconds after a tile becomes full before the sequencer deletes its partial tiles and entry bundles (https://c2sp.org/tlog-tiles allows it; readers then fetch the full tile; docs/durability.md). More than checkpoint_max_age_seconds, so a reader holding a cached checkpoint still finds every partial it names. null keeps them for ever."
  type        = number
  default     = 60
  nullable    = true

  validation {
    condition     = var.partial_tile_grace_seconds == null ? true : var.partial_tile_grace_seconds > 10
    error_message = "partial_tile_grace_seconds must exceed 10 (the most checkpoint_max_age_seconds allows), or be null."
  }
}

################################################################################
# Waking the sequencer (wake.tf)
################################################################################

variable "sequencer_trigger" {
  description = "What starts the sequencer. \"event_source_mapping\" (the default): Lambda's pollers long-poll the queue and invoke it with each batch; robust and batched by AWS, but the polling is billed while the log is idle. \"writer_invoke\": no mapping; the write function invokes the sequencer asynchronously after each SendMessage, the sequencer drains the queue itself (batches of sequencer_batch_size, windows of sequencer_batching_window_seconds), and an EventBridge rule sweeps every sequencer_sweep_minutes for whatever a lost wake left. Nothing polls an idle log, but every write costs an extra Lambda request, and an entry whose wake is lost waits for the next sweep (terraform/README.md, \"Waking the sequencer\")."
  type        = string
  default     = "event_source_mapping"

  validation {
    condition     = contains(["event_source_mapping", "writer_invoke"], var.sequencer_trigger)
    error_message = "sequencer_trigger must be \"event_source_mapping\" or \"writer_invoke\"."
  }
}

variable "sequencer_sweep_minutes" {
  description = "With sequencer_trigger = \"writer_invoke\": minutes between the scheduled sweeps that drain the queue whatever wakes were lost (an EventBridge rate rule). The longest an entry whose wake was lost waits; each sweep of an idle log is one small invocation that only reads the queue's depth. Ignored otherwise."
  type        = number
  default     = 10

  validation {
    condition     = var.sequencer_sweep_minutes >= 1 && var.sequencer_sweep_minutes <= 1440 && floor(var.sequencer_sweep_minutes) == var.sequencer_sweep_minutes
    error_message = "sequencer_sweep_minutes must be a whole number of minutes between 1 and 1440 (a day)."
  }
}
