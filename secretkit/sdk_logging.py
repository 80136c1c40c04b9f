"""Keep third-party SDK loggers away from DEBUG: they print request and response bodies.

At DEBUG, botocore logs every KMS Decrypt response (a DEK seed) and the signed request
(the session token); urllib3, hvac and the kubernetes client log bodies and headers
too. Every entry point (the CLI, the plugin, a backend built as a library) caps these
loggers through this one list, so an SDK added later is covered everywhere at once.
"""

from __future__ import annotations

import logging

SDK_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3", "hvac", "kubernetes")


def cap_sdk_loggers(minimum: int = logging.INFO, *, only_unset: bool = False) -> None:
    """Set every SDK logger to at least ``minimum``.

    With ``only_unset``, loggers whose level the application chose itself are left
    alone (what a library, as opposed to an entry point, should do).
    """
    for name in SDK_LOGGERS:
        logger = logging.getLogger(name)
        if only_unset and logger.level != logging.NOTSET:
            continue
        logger.setLevel(max(logger.level if only_unset else 0, minimum))
