"""`python -m tests.production.gateway_main`: the gateway (`python -m bot serve`) with its lease
lengths taken from TEST_INBOX_LEASE_S / TEST_SEND_LEASE_S, so that recovery from a `kill -9` is
observable in seconds instead of the production 30 s / 60 s. Nothing else differs."""
from __future__ import annotations

import os
import sys
from datetime import timedelta


def main() -> int:
    from bot import inbox, outbox
    from bot.cli import main as bot_main

    if os.environ.get("TEST_INBOX_LEASE_S"):
        inbox.LEASE = timedelta(seconds=float(os.environ["TEST_INBOX_LEASE_S"]))
    if os.environ.get("TEST_SEND_LEASE_S"):
        outbox.SEND_LEASE = timedelta(seconds=float(os.environ["TEST_SEND_LEASE_S"]))
    return bot_main(["serve"])


if __name__ == "__main__":
    sys.exit(main())
