provider "aws" {
  region     = var.region
  access_key = var.aws_access_key_id
  secret_key = var.aws_secret_access_key

  # Against an emulator there are no real credentials, account or instance metadata to check.
  skip_credentials_validation = var.aws_endpoint_url != null
  skip_requesting_account_id  = var.aws_endpoint_url != null
  skip_metadata_api_check     = var.aws_endpoint_url != null
  s3_use_path_style           = var.aws_endpoint_url != null

  # Null endpoints mean the real AWS endpoints.
  endpoints {
    apigatewayv2 = var.aws_endpoint_url
    cloudfront   = var.aws_endpoint_url
    cloudwatch   = var.aws_endpoint_url
    events       = var.aws_endpoint_url
    iam          = var.aws_endpoint_url
    lambda       = var.aws_endpoint_url
    logs         = var.aws_endpoint_url
    s3           = var.aws_endpoint_url
    ssm          = var.aws_endpoint_url
    sns          = var.aws_endpoint_url
    sqs          = var.aws_endpoint_url
    sts          = var.aws_endpoint_url
  }

  default_tags {
    tags = {
      Project = "stelae"
      Log     = var.name
    }
  }
}

resource "aws_sns_topic" "alarms" {
  count = var.alarm_email == null ? 0 : 1

  name = "${var.name}-alarms"
}

resource "aws_sns_topic_subscription" "alarms" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

module "stelae" {
  source = "../../modules/stelae"

  name             = var.name
  write_lambda_zip = var.lambda_zip
  verifier_key     = var.verifier_key
  # The browser explorer, uploaded beside the log: the read URL shows it (docs/explorer.md).
  explorer_dir = coalesce(var.explorer_dir, "${path.module}/../../../stelae/explorer")

  signing_key_parameter_name = var.signing_key_parameter_name
  write_front_door           = var.write_front_door
  api_access_log             = var.api_access_log

  # What starts the sequencer (terraform/README.md, "Waking the sequencer").
  sequencer_trigger       = var.sequencer_trigger
  sequencer_sweep_minutes = var.sequencer_sweep_minutes

  # Optional post-quantum checkpoint signature (docs/compatibility.md).
  mldsa_verifier_key               = var.mldsa_verifier_key
  mldsa_signing_key_parameter_name = var.mldsa_signing_key_parameter_name

  bucket_force_destroy = var.bucket_force_destroy
  alarms               = var.alarms || var.alarm_email != null
  alarm_actions        = aws_sns_topic.alarms[*].arn

  create_cloudfront_policies      = !var.emulator_compatible
  cloudfront_retain_on_delete     = var.cloudfront_retain_on_delete
  wait_for_cloudfront_deployment  = !var.emulator_compatible
  create_dlq_redrive_allow_policy = !var.emulator_compatible
  deny_insecure_transport         = !var.emulator_compatible
}
