"""AWS Lambda entry points only; each handler is a few lines over library code.

``lambda`` is a Python keyword, so these modules are imported by name (the Lambda runtime does
``importlib.import_module("stelae.lambda.write")``), never with an ``import`` statement.
"""
