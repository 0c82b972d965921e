"""AWS list prices (us-east-1) that :mod:`benchmarks.aws_cost` multiplies its measured counts by.

**Check them before relying on the figures.** These are the well-known public on-demand list
prices for us-east-1 as AWS published them in 2025 (:data:`AS_OF`), written down here by hand:
the benchmark never fetches a price (it runs offline), and AWS changes prices and tiers. Each
price names the page to check it against. Free tiers are ignored (each is noted); where a price
is tiered, the first tier is used and the next one is noted, except API Gateway's HTTP API
requests, which :mod:`benchmarks.aws_pricing` prices at each profile's monthly volume.
"""

from __future__ import annotations

from dataclasses import dataclass

AS_OF = "2025"
REGION = "us-east-1"


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    source: str
    note: str = ""


PRICES: dict[str, Price] = {
    "lambda_request": Price(
        0.20 / 1e6,
        "request",
        "https://aws.amazon.com/lambda/pricing/",
        "$0.20 per 1M requests. Free tier: 1M requests/month.",
    ),
    "lambda_gb_second": Price(
        0.0000166667,
        "GB-second (x86_64)",
        "https://aws.amazon.com/lambda/pricing/",
        "First tier (first 6 billion GB-s/month); arm64 is $0.0000133334. Billed per 1 ms. "
        "The init phase of a cold start has been billed too since 1 August 2025. "
        "Free tier: 400,000 GB-s/month.",
    ),
    "lambda_gb_second_arm64": Price(
        0.0000133334,
        "GB-second (arm64)",
        "https://aws.amazon.com/lambda/pricing/",
        "First tier (first 7.5 billion GB-s/month). Billed per 1 ms. What the module deploys.",
    ),
    "apigw_http_request": Price(
        1.00 / 1e6,
        "HTTP API request",
        "https://aws.amazon.com/api-gateway/pricing/",
        "First 300M requests/month (per account and region); $0.90 per 1M above "
        "(apigw_http_request_over_300m). Metered in 512 KB increments.",
    ),
    "apigw_http_request_over_300m": Price(
        0.90 / 1e6,
        "HTTP API request beyond the month's first 300M",
        "https://aws.amazon.com/api-gateway/pricing/",
        "The second tier of HTTP API requests (300M+ a month, per account and region).",
    ),
    "sqs_request": Price(
        0.40 / 1e6,
        "SQS standard request (64 KB chunk)",
        "https://aws.amazon.com/sqs/pricing/",
        "First 100 billion requests/month. Each 64 KB chunk of a payload is one request; a "
        "batch call is one request. Free tier: 1M requests/month.",
    ),
    "s3_put": Price(
        0.005 / 1000,
        "PUT, COPY, POST or LIST request",
        "https://aws.amazon.com/s3/pricing/",
        "S3 Standard. A conditional put (If-Match / If-None-Match) is a PUT, whatever its answer.",
    ),
    "s3_get": Price(
        0.0004 / 1000,
        "GET, HEAD or other request",
        "https://aws.amazon.com/s3/pricing/",
        "S3 Standard. A GET answered 404 is still a GET request.",
    ),
    "s3_storage_gb_month": Price(
        0.023,
        "GB-month",
        "https://aws.amazon.com/s3/pricing/",
        "S3 Standard, first 50 TB/month; $0.022 for the next 450 TB.",
    ),
    "secret_month": Price(
        0.40,
        "secret-month",
        "https://aws.amazon.com/secrets-manager/pricing/",
        "Prorated by the hour.",
    ),
    "secret_api_call": Price(
        0.05 / 10_000,
        "Secrets Manager API call",
        "https://aws.amazon.com/secrets-manager/pricing/",
    ),
    "logs_ingest_gb": Price(
        0.50,
        "GB ingested (standard log class)",
        "https://aws.amazon.com/cloudwatch/pricing/",
        "Free tier: 5 GB/month.",
    ),
    "logs_storage_gb_month": Price(
        0.03,
        "GB-month archived (compressed)",
        "https://aws.amazon.com/cloudwatch/pricing/",
    ),
    "alarm_month": Price(
        0.10,
        "standard-resolution metric alarm-month",
        "https://aws.amazon.com/cloudwatch/pricing/",
        "Free tier: 10 alarms.",
    ),
    "cloudfront_https_request": Price(
        0.0100 / 10_000,
        "HTTPS request (United States, Europe)",
        "https://aws.amazon.com/cloudfront/pricing/",
        "Free tier: 10M requests/month.",
    ),
    "cloudfront_gb_out": Price(
        0.085,
        "GB to the internet (United States, Europe)",
        "https://aws.amazon.com/cloudfront/pricing/",
        "First 10 TB/month. Origin fetches from S3 carry no transfer charge. "
        "Free tier: 1 TB/month.",
    ),
    "internet_gb_out": Price(
        0.09,
        "GB to the internet (API Gateway responses)",
        "https://aws.amazon.com/ec2/pricing/on-demand/#Data_Transfer",
        "API Gateway bills data out at EC2 rates; first 10 TB/month after the first 100 GB free.",
    ),
    "eventbridge_scheduled_event": Price(
        0.0,
        "event of a scheduled rule on the default event bus",
        "https://aws.amazon.com/eventbridge/pricing/",
        "The page prices custom, partner and opt-in AWS data events (USD 1.00 per million) and "
        "lists no price for the events a scheduled rule emits (source aws.events): taken as "
        "free. EventBridge Scheduler (the newer service) bills USD 1.00 per million "
        "invocations after 14 million free a month.",
    ),
}


APIGW_HTTP_FIRST_TIER_REQUESTS = 300_000_000
"""HTTP API requests a month at ``apigw_http_request``; beyond, ``apigw_http_request_over_300m``."""


def price(name: str) -> float:
    """The price of one unit of ``name``, in US dollars."""
    return PRICES[name].usd
