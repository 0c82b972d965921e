/*
 * How the sequencer is started (var.sequencer_trigger; terraform/README.md, "Waking the
 * sequencer").
 *
 * "event_source_mapping" (the default): Lambda's pollers long-poll the queue all the time and
 * invoke the sequencer with each batch (main.tf, aws_lambda_event_source_mapping.sequencer).
 *
 * "writer_invoke": no mapping, so nothing polls an idle queue.
 *
 *   write function --SendMessage--> SQS <--ReceiveMessage/DeleteMessageBatch-- sequencer (drain loop)
 *        |                                                                        ^   ^
 *        +--Invoke (async, {"stelae": "wake"})-----------------------------------+   |
 *   EventBridge rate(sequencer_sweep_minutes) --------------------------------------+
 *
 * The wake carries no data (the queue does), so a lost or dropped wake loses nothing: the
 * scheduled sweep drains whatever it left. One drain loop at a time (reserved concurrency 1,
 * main.tf): extra wakes are throttled, and with the event invoke config below they are dropped
 * after a minute instead of being retried for six hours.
 */

locals {
  writer_invoke = var.sequencer_trigger == "writer_invoke"

  # Merged into the functions' environments in main.tf; names and meanings in
  # stelae/sequencer/aws.py. Only a function ARN and two numbers.
  wake_environment = local.writer_invoke ? {
    STELAE_WAKE_FUNCTION = aws_lambda_function.sequencer.arn
  } : {}
  drain_environment = local.writer_invoke ? {
    STELAE_BATCH_SIZE           = tostring(var.sequencer_batch_size)
    STELAE_BATCH_WINDOW_SECONDS = tostring(var.sequencer_batching_window_seconds)
  } : {}

  # EventBridge wants the singular for one: rate(1 minute).
  sweep_schedule = var.sequencer_sweep_minutes == 1 ? "rate(1 minute)" : "rate(${var.sequencer_sweep_minutes} minutes)"
}

# Wakes and sweeps are asynchronous invocations. A throttled one (another drain loop is running)
# or a failed one is not worth Lambda's default of retrying for up to six hours: it carries
# nothing, and the running loop, the next wake or the next sweep drains the queue.
resource "aws_lambda_function_event_invoke_config" "sequencer" {
  count = local.writer_invoke ? 1 : 0

  function_name                = aws_lambda_function.sequencer.function_name
  maximum_event_age_in_seconds = 60
  maximum_retry_attempts       = 0
}

# The safety net: drains what a lost wake left, and what failed and became visible again. An
# empty sweep only asks the queue how many messages it holds (stelae/lambda/sequence.py).
resource "aws_cloudwatch_event_rule" "sweep" {
  count = local.writer_invoke ? 1 : 0

  name                = "${var.name}-sequencer-sweep"
  description         = "stelae log ${var.name}: drain the submissions queue every ${var.sequencer_sweep_minutes} min, whatever wakes were lost"
  schedule_expression = local.sweep_schedule
  tags                = var.tags

  lifecycle {
    # A drain loop starts a batch only if what the batch may need still fits in the time left
    # (stelae/sequencer/drain.py): two 1 s long polls, the window, 5 s reserved for the
    # integration, the witnesses' timeout and 1 s of margin. 10 s more covers a cold start. With
    # less, no batch ever starts and the entries wait in the queue until they expire.
    precondition {
      condition     = var.sequencer_timeout_seconds >= 2 + var.sequencer_batching_window_seconds + 5 + (var.witness_policy == null ? 0 : var.witness_timeout_seconds) + 1 + 10
      error_message = "With sequencer_trigger = \"writer_invoke\", sequencer_timeout_seconds must be at least sequencer_batching_window_seconds + 18 s (plus witness_timeout_seconds with a witness policy): the drain loop's long polls, integration reserve, margin and a cold start."
    }
  }
}

resource "aws_cloudwatch_event_target" "sweep" {
  count = local.writer_invoke ? 1 : 0

  rule = aws_cloudwatch_event_rule.sweep[0].name
  arn  = aws_lambda_function.sequencer.arn
}

resource "aws_lambda_permission" "sweep" {
  count = local.writer_invoke ? 1 : 0

  statement_id  = "AllowScheduledSweep"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.sequencer.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.sweep[0].arn
}
