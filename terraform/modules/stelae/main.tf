/*
 * One stelae transparency log on AWS.
 *
 *   client --POST--> HTTP API --> write function --SendMessage--> SQS --> sequencer function (one at a time)
 *                                                                              |  tiles, bundles, indexes,
 *                                                                              v  signed checkpoint (CAS)
 *   client <--GET-- CloudFront (origin access control) <------------------ private S3 bucket
 *
 * Nothing here runs while the log is idle: the cost of an idle log is its storage.
 */

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  bucket_name = coalesce(var.bucket_name, "${var.name}-tlog-${data.aws_caller_identity.current.account_id}")

  # The SecureString parameter the operator creates (`aws ssm put-parameter`); the module only
  # names it, so no resource or data source ever reads the key into the Terraform state.
  signing_key_parameter     = coalesce(var.signing_key_parameter_name, "/${var.name}/signing-key")
  signing_key_parameter_arn = "arn:${data.aws_partition.current.partition}:ssm:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:parameter/${trimprefix(local.signing_key_parameter, "/")}"
  sequencer_zip             = coalesce(var.sequencer_lambda_zip, var.write_lambda_zip)
  state_prefix_arn          = "${aws_s3_bucket.this.arn}/${local.state_prefix}*"
  immutable_max_age         = 31536000

  # The optional ML-DSA-44 log key (docs/compatibility.md, "Post-quantum log signatures"): a
  # second SecureString, named the same way. Only the vkey's origin+keyid prefix goes into the
  # environment; the whole key (~1.8 KB) would take almost half of Lambda's 4 KB.
  mldsa                           = var.mldsa_verifier_key != null
  mldsa_signing_key_parameter     = coalesce(var.mldsa_signing_key_parameter_name, "/${var.name}/mldsa-signing-key")
  mldsa_signing_key_parameter_arn = "arn:${data.aws_partition.current.partition}:ssm:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:parameter/${trimprefix(local.mldsa_signing_key_parameter, "/")}"
  mldsa_environment = local.mldsa ? {
    STELAE_MLDSA_VKEY              = join("+", slice(split("+", var.mldsa_verifier_key), 0, 2))
    STELAE_MLDSA_SIGNING_KEY_PARAM = local.mldsa_signing_key_parameter
  } : {}

  # Only names, URLs, ARNs and the public verifier key go into function environments: Lambda
  # shows its environment to anyone with lambda:GetFunctionConfiguration, so key material never
  # belongs there. The sequencer fetches the key itself with ssm:GetParameter.
  # Names and meanings: stelae/sequencer/aws.py.
  common_environment = {
    STELAE_BUCKET    = aws_s3_bucket.this.id
    STELAE_QUEUE_URL = aws_sqs_queue.this.url
    STELAE_VKEY      = var.verifier_key
  }

  # The sequencer's private state (stelae/sequencer/store.py): never served, never read by the
  # write function.
  state_prefix = ".state/"

  # The two write routes; anything else gets API Gateway's own 404 without invoking a function.
  # With a Function URL in front instead, there is no API and no route: the service answers
  # 404/405 itself.
  api_gateway  = var.write_front_door == "api_gateway"
  write_routes = local.api_gateway ? toset(["POST /api/v1/log/entries", "POST /api/v2/log/entries"]) : toset([])

  # Lambda's advanced logging controls: JSON, and nothing below var.log_level. At WARN the
  # platform's START/END/REPORT lines (INFO) are not ingested, so a successful invocation writes
  # no log at all (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html).
  logging = {
    log_format            = "JSON"
    application_log_level = var.log_level
    system_log_level      = var.log_level
  }

  # Path patterns served with the short (checkpoint) policy. The default behaviour uses it too, so
  # anything not known to be immutable (lookup indexes, future files) is never cached for long.
  mutable_path_patterns = ["checkpoint"]

  not_found_key = ".well-known/stelae/not-found"
}

################################################################################
# Storage: a private bucket, readable only through CloudFront
################################################################################

resource "aws_s3_bucket" "this" {
  bucket        = local.bucket_name
  force_destroy = var.bucket_force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket = aws_s3_bucket.this.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  # SSE-S3 rather than KMS: CloudFront's origin access control would need a key policy grant to
  # read SSE-KMS objects, and everything outside the state prefix is public anyway.
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid       = "CloudFrontReadsTheLog"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this.arn}/*"]

    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }

    # Only this log's distribution, not any distribution in any account.
    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [aws_cloudfront_distribution.this.arn]
    }
  }

  # The sequencer's private state is never served: an explicit deny wins over the allow above,
  # whatever cache behaviours the distribution grows later.
  statement {
    sid       = "CloudFrontNeverReadsState"
    effect    = "Deny"
    actions   = ["s3:GetObject"]
    resources = [local.state_prefix_arn]

    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }
  }

  # Plain-HTTP requests are refused for every action the log's principals use.
  dynamic "statement" {
    for_each = var.deny_insecure_transport ? [1] : []
    content {
      sid       = "DenyInsecureTransport"
      effect    = "Deny"
      actions   = ["s3:GetObject", "s3:GetObjectTagging", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"]
      resources = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]

      principals {
        type        = "AWS"
        identifiers = ["*"]
      }

      condition {
        test     = "Bool"
        variable = "aws:SecureTransport"
        values   = ["false"]
      }
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.bucket.json

  # Applying a policy while the public access block is being created can fail with a 409.
  depends_on = [aws_s3_bucket_public_access_block.this]
}

# CloudFront is not granted s3:ListBucket (with it, a request for "/" would list every key,
# `.state/` included), so S3 answers 403 for a missing object. The distribution turns that into a
# 404 with this body, which is what tlog-tiles clients expect for a tile that does not exist yet.
# The browser explorer (docs/explorer.md): plain files beside the log, served by CloudFront at `/`
# (`index.html`, the default root object) and `/explorer/<file>`; revalidated on every read so a
# new stelae version's page replaces the old one.
locals {
  explorer_types = { html = "text/html; charset=utf-8", js = "text/javascript; charset=utf-8", css = "text/css; charset=utf-8" }
  explorer_files = var.explorer_dir == null ? toset([]) : toset([
    for f in fileset(var.explorer_dir, "*") : f if contains(keys(local.explorer_types), element(split(".", f), length(split(".", f)) - 1))
  ])
}

resource "aws_s3_object" "explorer" {
  for_each      = local.explorer_files
  bucket        = aws_s3_bucket.this.id
  key           = each.value == "index.html" ? "index.html" : "explorer/${each.value}"
  source        = "${var.explorer_dir}/${each.value}"
  etag          = filemd5("${var.explorer_dir}/${each.value}")
  content_type  = local.explorer_types[element(split(".", each.value), length(split(".", each.value)) - 1)]
  cache_control = "no-cache"
  tags          = var.tags
}

resource "aws_s3_object" "not_found" {
  bucket        = aws_s3_bucket.this.id
  key           = local.not_found_key
  content       = "not found\n"
  content_type  = "text/plain; charset=utf-8"
  cache_control = "public, max-age=${var.not_found_cache_seconds}"
  tags          = var.tags
}

################################################################################
# Reads: CloudFront with origin access control
################################################################################

resource "aws_cloudfront_origin_access_control" "this" {
  name                              = "${var.name}-log"
  description                       = "stelae log ${var.name}: CloudFront signs its reads of the private bucket"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

resource "aws_cloudfront_cache_policy" "immutable" {
  count = var.create_cloudfront_policies ? 1 : 0

  name    = "${var.name}-immutable"
  comment = "stelae tiles and entry bundles: written once, never changed"

  # min = max: the edge keeps them a year whatever the object metadata says.
  min_ttl     = local.immutable_max_age
  default_ttl = local.immutable_max_age
  max_ttl     = local.immutable_max_age

  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_brotli = true
    enable_accept_encoding_gzip   = true

    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "none"
    }
    query_strings_config {
      query_string_behavior = "none"
    }
  }
}

resource "aws_cloudfront_cache_policy" "mutable" {
  count = var.create_cloudfront_policies ? 1 : 0

  name    = "${var.name}-checkpoint"
  comment = "stelae checkpoint and lookup indexes: a few seconds at most"

  min_ttl     = 0
  default_ttl = var.checkpoint_max_age_seconds
  max_ttl     = var.checkpoint_max_age_seconds

  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_brotli = true
    enable_accept_encoding_gzip   = true

    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "none"
    }
    query_strings_config {
      query_string_behavior = "none"
    }
  }
}

resource "aws_cloudfront_response_headers_policy" "this" {
  for_each = var.create_cloudfront_policies ? {
    immutable = "public, max-age=${local.immutable_max_age}, immutable"
    mutable   = "public, max-age=${var.checkpoint_max_age_seconds}"
  } : {}

  name    = "${var.name}-${each.key}"
  comment = "stelae ${each.key} objects: CORS for browsers and the Cache-Control clients should see"

  # Reads are simple GETs (no custom request headers), so browsers need only these headers on the
  # response, not a preflight.
  cors_config {
    access_control_allow_credentials = false
    access_control_max_age_sec       = 86400
    origin_override                  = true

    access_control_allow_headers {
      items = ["*"]
    }
    access_control_allow_methods {
      items = ["GET", "HEAD", "OPTIONS"]
    }
    access_control_allow_origins {
      items = var.cors_allowed_origins
    }
    access_control_expose_headers {
      items = ["ETag"]
    }
  }

  # Whatever metadata the sequencer stored, browsers and downstream caches see the log's policy.
  custom_headers_config {
    items {
      header   = "Cache-Control"
      value    = each.value
      override = true
    }
  }

  security_headers_config {
    content_type_options {
      override = true
    }
  }
}

resource "aws_cloudfront_distribution" "this" {
  enabled             = true
  default_root_object = var.explorer_dir == null ? null : "index.html"
  comment             = "stelae log ${var.name}"
  is_ipv6_enabled     = true
  http_version        = "http2and3"
  price_class         = var.cloudfront_price_class
  wait_for_deployment = var.wait_for_cloudfront_deployment
  retain_on_delete    = var.cloudfront_retain_on_delete
  tags                = var.tags

  origin {
    origin_id                = "log"
    domain_name              = aws_s3_bucket.this.bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.this.id
  }

  # Everything not matched below (lookup indexes, anything added later) is treated as mutable.
  default_cache_behavior {
    target_origin_id           = "log"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD", "OPTIONS"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = var.create_cloudfront_policies ? aws_cloudfront_cache_policy.mutable[0].id : null
    response_headers_policy_id = var.create_cloudfront_policies ? aws_cloudfront_response_headers_policy.this["mutable"].id : null

    # Legacy TTL settings, used only where the policy APIs are unavailable (emulators).
    min_ttl     = var.create_cloudfront_policies ? null : 0
    default_ttl = var.create_cloudfront_policies ? null : var.checkpoint_max_age_seconds
    max_ttl     = var.create_cloudfront_policies ? null : var.checkpoint_max_age_seconds

    dynamic "forwarded_values" {
      for_each = var.create_cloudfront_policies ? [] : [1]
      content {
        query_string = false
        cookies {
          forward = "none"
        }
      }
    }
  }

  dynamic "ordered_cache_behavior" {
    for_each = concat(
      [for p in var.immutable_path_patterns : { path = p, kind = "immutable", ttl = local.immutable_max_age }],
      [for p in local.mutable_path_patterns : { path = p, kind = "mutable", ttl = var.checkpoint_max_age_seconds }],
    )
    iterator = b

    content {
      path_pattern               = b.value.path
      target_origin_id           = "log"
      viewer_protocol_policy     = "redirect-to-https"
      allowed_methods            = ["GET", "HEAD", "OPTIONS"]
      cached_methods             = ["GET", "HEAD"]
      compress                   = true
      cache_policy_id            = var.create_cloudfront_policies ? (b.value.kind == "immutable" ? aws_cloudfront_cache_policy.immutable[0].id : aws_cloudfront_cache_policy.mutable[0].id) : null
      response_headers_policy_id = var.create_cloudfront_policies ? aws_cloudfront_response_headers_policy.this[b.value.kind].id : null

      min_ttl     = var.create_cloudfront_policies ? null : (b.value.kind == "immutable" ? b.value.ttl : 0)
      default_ttl = var.create_cloudfront_policies ? null : b.value.ttl
      max_ttl     = var.create_cloudfront_policies ? null : b.value.ttl

      dynamic "forwarded_values" {
        for_each = var.create_cloudfront_policies ? [] : [1]
        content {
          query_string = false
          cookies {
            forward = "none"
          }
        }
      }
    }
  }

  # A missing object (S3 says 403 without ListBucket) becomes a short-lived 404: the tile or
  # checkpoint will probably exist in a moment, so the edge must not remember its absence.
  custom_error_response {
    error_code            = 403
    response_code         = 404
    response_page_path    = "/${local.not_found_key}"
    error_caching_min_ttl = var.not_found_cache_seconds
  }

  custom_error_response {
    error_code            = 404
    response_code         = 404
    response_page_path    = "/${local.not_found_key}"
    error_caching_min_ttl = var.not_found_cache_seconds
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = true
  }
}

################################################################################
# Queue: write function -> sequencer, with a dead-letter queue
################################################################################

resource "aws_sqs_queue" "dlq" {
  name                      = "${var.name}-submissions-dlq"
  message_retention_seconds = var.queue_message_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_sqs_queue" "this" {
  name                      = "${var.name}-submissions"
  message_retention_seconds = var.queue_message_retention_seconds
  # AWS's rule for SQS event sources: at least six times the function timeout, so a message is not
  # redelivered while a slow sequencer run still holds it.
  visibility_timeout_seconds = 6 * var.sequencer_timeout_seconds
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })

  tags = var.tags
}

# Only this log's queue may use the dead-letter queue.
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  count = var.create_dlq_redrive_allow_policy ? 1 : 0

  queue_url = aws_sqs_queue.dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.this.arn]
  })
}

################################################################################
# Logs
################################################################################

resource "aws_cloudwatch_log_group" "write" {
  name              = "/aws/lambda/${var.name}-write"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_cloudwatch_log_group" "sequencer" {
  name              = "/aws/lambda/${var.name}-sequencer"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

# Only when the operator asks for the access log (api_access_log): a line per request is the
# one log the deployment would otherwise ingest on every write.
resource "aws_cloudwatch_log_group" "api" {
  count = local.api_gateway && var.api_access_log ? 1 : 0

  name              = "/aws/apigateway/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

################################################################################
# IAM: one role per function, each action named, each resource this log's own
################################################################################

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "write" {
  name               = "${var.name}-write"
  description        = "stelae log ${var.name}: the write function"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "write" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.write.arn}:*"]
  }

  statement {
    sid       = "Enqueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.this.arn]
  }

  # Reads the published log (checkpoint, tiles, lookup indexes) to answer duplicates and return
  # inclusion proofs. ListBucket makes a missing key a 404 rather than a 403.
  statement {
    sid       = "ReadLog"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this.arn}/*"]
  }

  statement {
    sid       = "ListLog"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.this.arn]
  }

  # The sequencer's private state is not the write side's business.
  statement {
    sid       = "NotState"
    effect    = "Deny"
    actions   = ["s3:GetObject"]
    resources = [local.state_prefix_arn]
  }

  # sequencer_trigger = "writer_invoke" (wake.tf): the write function wakes the sequencer, and
  # may invoke no other function.
  dynamic "statement" {
    for_each = local.writer_invoke ? [aws_lambda_function.sequencer.arn] : []
    content {
      sid       = "WakeSequencer"
      actions   = ["lambda:InvokeFunction"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "write" {
  name   = "stelae-write"
  role   = aws_iam_role.write.id
  policy = data.aws_iam_policy_document.write.json
}

resource "aws_iam_role" "sequencer" {
  name               = "${var.name}-sequencer"
  description        = "stelae log ${var.name}: the sequencer function"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "sequencer" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.sequencer.arn}:*"]
  }

  # What the event source mapping does on the function's behalf, or, with sequencer_trigger =
  # "writer_invoke", the drain loop itself (the queue's depth before a sweep; DeleteMessageBatch
  # is authorized as sqs:DeleteMessage). Failed messages are left to their visibility timeout,
  # never released early, so no sqs:ChangeMessageVisibility.
  statement {
    sid       = "Dequeue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.this.arn]
  }

  # Tiles, bundles, indexes, checkpoints (compare-and-swap with If-Match / If-None-Match is a
  # PutObject) and the private state. Only partial tiles are ever deleted (the next statement).
  statement {
    sid       = "WriteLog"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.this.arn}/*"]
  }

  # Garbage collection (docs/durability.md, docs/index.md): partial tiles and bundles once their
  # full tile is published, and lookup-index runs that merges replaced; nothing else. The
  # resources match only keys shaped like those (no full tile, checkpoint, history object, batch
  # record or manifest); the sequencer's own key check refuses any other key first.
  statement {
    sid     = "DeleteReplacedObjects"
    actions = ["s3:DeleteObject"]
    resources = [
      "${aws_s3_bucket.this.arn}/tile/*.p/*",
      "${aws_s3_bucket.this.arn}/index/run/*",
    ]
  }

  statement {
    sid       = "ListLog"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.this.arn]
  }

  # The SecureString with the signing key. With the AWS managed key (aws/ssm) SSM decrypts on
  # the caller's behalf; a customer managed key also needs kms:Decrypt, below.
  statement {
    sid       = "SigningKey"
    actions   = ["ssm:GetParameter"]
    resources = concat([local.signing_key_parameter_arn], local.mldsa ? [local.mldsa_signing_key_parameter_arn] : [])
  }

  dynamic "statement" {
    for_each = var.signing_key_kms_key_arn == null ? [] : [var.signing_key_kms_key_arn]
    content {
      sid       = "SigningKeyDecrypt"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "sequencer" {
  name   = "stelae-sequencer"
  role   = aws_iam_role.sequencer.id
  policy = data.aws_iam_policy_document.sequencer.json
}

################################################################################
# Functions
################################################################################

resource "aws_lambda_function" "write" {
  function_name    = "${var.name}-write"
  description      = "stelae log ${var.name}: validates a submission and queues it"
  role             = aws_iam_role.write.arn
  runtime          = var.lambda_runtime
  architectures    = [var.lambda_architecture]
  handler          = "stelae.lambda.write.handler"
  filename         = var.write_lambda_zip
  source_code_hash = filebase64sha256(var.write_lambda_zip)
  memory_size      = var.write_memory_mb
  timeout          = var.write_timeout_seconds

  environment {
    # HTTP APIs accept payloads up to 10 MB; the write service enforces its own, smaller limit.
    variables = merge(var.write_environment, local.common_environment, local.wake_environment, {
      STELAE_WAIT_SECONDS = tostring(var.write_wait_seconds)
      # The first look: when the batch can have closed and been integrated.
      STELAE_POLL_AFTER_SECONDS = tostring(var.sequencer_batching_window_seconds + var.write_poll_margin_seconds)
    })
  }

  logging_config {
    log_format            = local.logging.log_format
    application_log_level = local.logging.application_log_level
    system_log_level      = local.logging.system_log_level
    log_group             = aws_cloudwatch_log_group.write.name
  }

  tags = var.tags

  # The function must not create its own log group (without retention) before ours exists.
  depends_on = [aws_cloudwatch_log_group.write, aws_iam_role_policy.write]
}

resource "aws_lambda_function" "sequencer" {
  function_name    = "${var.name}-sequencer"
  description      = "stelae log ${var.name}: integrates queued submissions and publishes a signed checkpoint"
  role             = aws_iam_role.sequencer.arn
  runtime          = var.lambda_runtime
  architectures    = [var.lambda_architecture]
  handler          = "stelae.lambda.sequence.handler"
  filename         = local.sequencer_zip
  source_code_hash = filebase64sha256(local.sequencer_zip)
  memory_size      = var.sequencer_memory_mb
  timeout          = var.sequencer_timeout_seconds
  # writer_invoke (wake.tf): one drain loop at a time, so extra wakes are throttled (and
  # dropped) instead of starting loops that would only race for the same batches.
  reserved_concurrent_executions = var.sequencer_reserved_concurrency == null ? -1 : (local.writer_invoke ? 1 : var.sequencer_reserved_concurrency)

  environment {
    # With var.witness_policy, local.witness_policy_environment (witness.tf) names the policy.
    variables = merge(var.sequencer_environment, local.common_environment, local.witness_policy_environment, local.mldsa_environment, local.drain_environment, {
      # The parameter's name, never the key: the function reads the value at start-up.
      STELAE_SIGNING_KEY_PARAM = local.signing_key_parameter
      STELAE_GC_GRACE_SECONDS  = var.partial_tile_grace_seconds == null ? "off" : tostring(var.partial_tile_grace_seconds)
    })
  }

  logging_config {
    log_format            = local.logging.log_format
    application_log_level = local.logging.application_log_level
    system_log_level      = local.logging.system_log_level
    log_group             = aws_cloudwatch_log_group.sequencer.name
  }

  tags = var.tags

  depends_on = [aws_cloudwatch_log_group.sequencer, aws_iam_role_policy.sequencer]
}

# The default wake-up path (sequencer_trigger = "event_source_mapping"); wake.tf has the other.
resource "aws_lambda_event_source_mapping" "sequencer" {
  count = local.writer_invoke ? 0 : 1

  event_source_arn                   = aws_sqs_queue.this.arn
  function_name                      = aws_lambda_function.sequencer.arn
  batch_size                         = var.sequencer_batch_size
  maximum_batching_window_in_seconds = var.sequencer_batching_window_seconds
  # The sequencer reports which messages it could not integrate; the rest are deleted.
  function_response_types = ["ReportBatchItemFailures"]

  # 2 is the smallest value SQS event sources accept. The sequencer's reserved concurrency is at
  # least this (variables.tf): a reservation below the mapping's maximum concurrency is a
  # documented cause of throttled invocations. Two sequencers at once are safe (the batch claim
  # and the checkpoint compare-and-swap); usually one runs, as batches rarely overlap.
  scaling_config {
    maximum_concurrency = 2
  }

  lifecycle {
    # The mapping's window is whole seconds; only the drain loop (writer_invoke) takes fractions.
    precondition {
      condition     = floor(var.sequencer_batching_window_seconds) == var.sequencer_batching_window_seconds
      error_message = "sequencer_batching_window_seconds must be a whole number of seconds with sequencer_trigger = \"event_source_mapping\"."
    }
  }
}

# Deployments from before sequencer_trigger keep their mapping.
moved {
  from = aws_lambda_event_source_mapping.sequencer
  to   = aws_lambda_event_source_mapping.sequencer[0]
}

################################################################################
# Writes: HTTP API
################################################################################

resource "aws_apigatewayv2_api" "this" {
  count = local.api_gateway ? 1 : 0

  name          = var.name
  description   = "stelae log ${var.name}: write API (Rekor v1 and v2 entry creation)"
  protocol_type = "HTTP"

  # HTTP APIs accept payloads up to 10 MB; the write service enforces its own, smaller limit.
  cors_configuration {
    allow_origins  = var.cors_allowed_origins
    allow_methods  = ["POST", "OPTIONS"]
    allow_headers  = ["content-type", "accept"]
    expose_headers = ["x-log-index", "retry-after", "location"]
    max_age        = 86400
  }

  tags = var.tags
}

resource "aws_apigatewayv2_integration" "write" {
  count = local.api_gateway ? 1 : 0

  api_id                 = aws_apigatewayv2_api.this[0].id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = aws_lambda_function.write.invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 30000
}

resource "aws_apigatewayv2_route" "write" {
  for_each = local.write_routes

  api_id    = aws_apigatewayv2_api.this[0].id
  route_key = each.value
  target    = "integrations/${aws_apigatewayv2_integration.write[0].id}"
}

resource "aws_apigatewayv2_stage" "this" {
  count = local.api_gateway ? 1 : 0

  api_id      = aws_apigatewayv2_api.this[0].id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit = var.api_throttling_burst_limit
    throttling_rate_limit  = var.api_throttling_rate_limit
  }

  dynamic "access_log_settings" {
    for_each = var.api_access_log ? [aws_cloudwatch_log_group.api[0].arn] : []

    content {
      destination_arn = access_log_settings.value
      format = jsonencode({
        requestId      = "$context.requestId"
        ip             = "$context.identity.sourceIp"
        requestTime    = "$context.requestTime"
        routeKey       = "$context.routeKey"
        status         = "$context.status"
        responseLength = "$context.responseLength"
        latency        = "$context.integrationLatency"
        error          = "$context.integrationErrorMessage"
      })
    }
  }

  tags = var.tags
}

resource "aws_lambda_permission" "api" {
  for_each = local.write_routes

  statement_id  = "AllowApi${replace(title(split("/", each.value)[2]), "/[^A-Za-z0-9]/", "")}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.write.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this[0].execution_arn}/*/${replace(each.value, " ", "")}"
}

# Deployments from before write_front_door keep their API (and its URL).
moved {
  from = aws_apigatewayv2_api.this
  to   = aws_apigatewayv2_api.this[0]
}

moved {
  from = aws_apigatewayv2_integration.write
  to   = aws_apigatewayv2_integration.write[0]
}

moved {
  from = aws_apigatewayv2_stage.this
  to   = aws_apigatewayv2_stage.this[0]
}

# With api_access_log false (the default) the moved group has no instance to land on, so an
# upgraded deployment destroys it (terraform/README.md, Cost); true keeps it.
moved {
  from = aws_cloudwatch_log_group.api
  to   = aws_cloudwatch_log_group.api[0]
}

################################################################################
# Writes, alternatively: a Lambda Function URL (write_front_door = "function_url")
################################################################################

# The same payload format 2.0 event as the HTTP API's, so the same handler. No per-request charge
# and no access log, but also no stage throttling (only the function's concurrency limits it),
# no custom domain and every path reaches the function (terraform/README.md, Cost).
resource "aws_lambda_function_url" "write" {
  count = local.api_gateway ? 0 : 1

  function_name      = aws_lambda_function.write.function_name
  authorization_type = var.function_url_auth_type

  cors {
    allow_origins  = var.cors_allowed_origins
    allow_methods  = ["POST"]
    allow_headers  = ["content-type", "accept"]
    expose_headers = ["x-log-index", "retry-after", "location"]
    max_age        = 86400
  }
}

# A public URL (auth NONE) needs a resource policy letting anyone invoke it through the URL;
# with AWS_IAM, callers need their own lambda:InvokeFunctionUrl grant instead.
resource "aws_lambda_permission" "function_url" {
  count = !local.api_gateway && var.function_url_auth_type == "NONE" ? 1 : 0

  statement_id           = "AllowPublicFunctionUrl"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.write.function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}

################################################################################
# Alarms
################################################################################

resource "aws_cloudwatch_metric_alarm" "sequencer_errors" {
  count = var.alarms ? 1 : 0

  alarm_name          = "${var.name}-sequencer-errors"
  alarm_description   = "The stelae sequencer failed: submissions are not being integrated."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.sequencer.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "write_errors" {
  count = var.alarms ? 1 : 0

  alarm_name          = "${var.name}-write-errors"
  alarm_description   = "The stelae write function crashed (bad input is a 4xx, not an error)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.write.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "queue_age" {
  count = var.alarms ? 1 : 0

  alarm_name          = "${var.name}-queue-oldest-message"
  alarm_description   = "A submission has waited too long to be sequenced: the sequencer is stuck or failing."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.this.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.oldest_message_alarm_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  count = var.alarms ? 1 : 0

  alarm_name          = "${var.name}-dlq-depth"
  alarm_description   = "Submissions reached the dead-letter queue: they were accepted but never sequenced. Inspect and redrive them."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}
