/*
 * Witnessing (docs/witness.md).
 *
 * 1. The sequencer's witness policy: with var.witness_policy, each checkpoint is published only
 *    with its quorum's cosignatures. The policy is an object in the private state prefix, named
 *    and pinned by its SHA-256 in the sequencer's environment (stelae/sequencer/aws.py).
 *
 * 2. An optional serverless witness (var.witness_enabled): a C2SP tlog-witness behind its own
 *    HTTP API, one function, its per-log state in this bucket under .state/witness/ (never
 *    served: CloudFront is denied .state/), written with S3 conditional writes
 *    (stelae/witness/s3state.py):
 *
 *      log --POST /add-checkpoint--> HTTP API --> witness function --If-Match PUT--> S3
 *      monitor --GET /<sha256(origin)>/checkpoint--^
 *
 *    Its key is an SSM SecureString the operator creates; the module only names it.
 */

locals {
  witness_policy_key = "${local.state_prefix}config/witness-policy"

  # Merged into the sequencer's environment in main.tf; names and meanings in
  # stelae/sequencer/aws.py. The key is read from the object resource, so the function is
  # created (or updated) only once the policy it will read is in the bucket.
  witness_policy_environment = var.witness_policy == null ? {} : {
    STELAE_WITNESS_POLICY_KEY      = one(aws_s3_object.witness_policy[*].key)
    STELAE_WITNESS_POLICY_SHA256   = sha256(var.witness_policy)
    STELAE_WITNESS_FAIL_OPEN       = tostring(var.witness_fail_open)
    STELAE_WITNESS_TIMEOUT_SECONDS = tostring(var.witness_timeout_seconds)
  }

  witness_count             = var.witness_enabled ? 1 : 0
  witness_prefix            = "${local.state_prefix}witness/"
  witness_key_parameter     = coalesce(var.witness_key_parameter_name, "/${var.name}/witness-key")
  witness_key_parameter_arn = "arn:${data.aws_partition.current.partition}:ssm:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:parameter/${trimprefix(local.witness_key_parameter, "/")}"
  witness_routes            = toset(["POST /add-checkpoint", "GET /{origin_hash}/checkpoint"])

  # Names, a digest and the public verifier key only; names and meanings in
  # stelae/witness/aws.py. The digest is read from the object resource, so the function is
  # created (or updated) only once the list it will read is in the bucket.
  witness_environment = merge(
    {
      STELAE_WITNESS_BUCKET          = aws_s3_bucket.this.id
      STELAE_WITNESS_PREFIX          = local.witness_prefix
      STELAE_WITNESS_LOG_LIST_SHA256 = try(sha256(aws_s3_object.witness_log_list[0].content), "")
      STELAE_WITNESS_KEY_PARAM       = local.witness_key_parameter
    },
    var.witness_verifier_key == null ? {} : { STELAE_WITNESS_VKEY = var.witness_verifier_key },
  )
}

################################################################################
# The sequencer's policy
################################################################################

resource "aws_s3_object" "witness_policy" {
  count = var.witness_policy == null ? 0 : 1

  bucket        = aws_s3_bucket.this.id
  key           = local.witness_policy_key
  content       = var.witness_policy
  content_type  = "text/plain; charset=utf-8"
  cache_control = "no-store"
  tags          = var.tags

  lifecycle {
    precondition {
      # A checkpoint's cosigning must end before the function does, or every batch times out.
      condition     = var.witness_timeout_seconds * 2 <= var.sequencer_timeout_seconds
      error_message = "witness_timeout_seconds must be at most half of sequencer_timeout_seconds."
    }
  }
}

################################################################################
# The witness: its log list, function, role and API
################################################################################

resource "aws_s3_object" "witness_log_list" {
  count = local.witness_count

  bucket        = aws_s3_bucket.this.id
  key           = "${local.witness_prefix}log-list"
  content       = var.witness_log_list
  content_type  = "text/plain; charset=utf-8"
  cache_control = "no-store"
  tags          = var.tags

  lifecycle {
    precondition {
      condition     = var.witness_log_list != null
      error_message = "witness_enabled needs witness_log_list: the logs the witness cosigns."
    }
  }
}

resource "aws_cloudwatch_log_group" "witness" {
  count = local.witness_count

  name              = "/aws/lambda/${var.name}-witness"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_iam_role" "witness" {
  count = local.witness_count

  name               = "${var.name}-witness"
  description        = "stelae log ${var.name}: the witness function"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "witness" {
  count = local.witness_count

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.witness[0].arn}:*"]
  }

  # Its log list and its records; nothing else of the bucket.
  statement {
    sid       = "ReadWitnessState"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this.arn}/${local.witness_prefix}*"]
  }

  # Only the per-log records: the witness cannot rewrite its own log list. Conditional writes
  # (If-None-Match, If-Match) are PutObject.
  statement {
    sid       = "WriteWitnessRecords"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.this.arn}/${local.witness_prefix}logs/*"]
  }

  # So that a log not seen yet is a 404 (NoSuchKey), not a 403: S3 answers 404 for a missing
  # object only to a caller that holds s3:ListBucket on the bucket. Not narrowed by an s3:prefix
  # condition: a GetObject request carries no s3:prefix, so such a grant may not count for that
  # decision, and a new log's first read would fail. Listing shows key names only, as the write
  # role's does.
  statement {
    sid       = "ListWitnessState"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.this.arn]
  }

  statement {
    sid       = "WitnessKey"
    actions   = ["ssm:GetParameter"]
    resources = [local.witness_key_parameter_arn]
  }

  dynamic "statement" {
    for_each = var.witness_key_kms_key_arn == null ? [] : [var.witness_key_kms_key_arn]
    content {
      sid       = "WitnessKeyDecrypt"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "witness" {
  count = local.witness_count

  name   = "stelae-witness"
  role   = aws_iam_role.witness[0].id
  policy = data.aws_iam_policy_document.witness[0].json
}

resource "aws_lambda_function" "witness" {
  count = local.witness_count

  function_name    = "${var.name}-witness"
  description      = "stelae log ${var.name}: a tlog-witness cosigning the logs of its log list"
  role             = aws_iam_role.witness[0].arn
  runtime          = var.lambda_runtime
  architectures    = [var.lambda_architecture]
  handler          = "stelae.lambda.witness.handler"
  filename         = var.write_lambda_zip
  source_code_hash = filebase64sha256(var.write_lambda_zip)
  memory_size      = var.witness_function_memory_mb
  timeout          = var.witness_function_timeout_seconds

  environment {
    variables = local.witness_environment
  }

  tags = var.tags

  depends_on = [aws_cloudwatch_log_group.witness, aws_iam_role_policy.witness]
}

resource "aws_apigatewayv2_api" "witness" {
  count = local.witness_count

  name          = "${var.name}-witness"
  description   = "stelae log ${var.name}: tlog-witness (add-checkpoint and the monitoring read)"
  protocol_type = "HTTP"
  tags          = var.tags
}

resource "aws_apigatewayv2_integration" "witness" {
  count = local.witness_count

  api_id                 = aws_apigatewayv2_api.witness[0].id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = aws_lambda_function.witness[0].invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 30000
}

# The two tlog-witness routes; anything else is API Gateway's own 404 without an invocation.
resource "aws_apigatewayv2_route" "witness" {
  for_each = var.witness_enabled ? local.witness_routes : toset([])

  api_id    = aws_apigatewayv2_api.witness[0].id
  route_key = each.value
  target    = "integrations/${aws_apigatewayv2_integration.witness[0].id}"
}

resource "aws_apigatewayv2_stage" "witness" {
  count = local.witness_count

  api_id      = aws_apigatewayv2_api.witness[0].id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit = var.witness_api_throttling_burst_limit
    throttling_rate_limit  = var.witness_api_throttling_rate_limit
  }

  tags = var.tags
}

resource "aws_lambda_permission" "witness" {
  count = local.witness_count

  statement_id  = "AllowWitnessApi"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.witness[0].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.witness[0].execution_arn}/*/*"
}
