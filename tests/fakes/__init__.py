"""Fake Messenger and Zalo servers on 127.0.0.1 and builders of signed webhook bodies, for the
channel tests and the gateway tests. Nothing here talks to the real platforms."""
from tests.fakes.graph import FakeGraph
from tests.fakes.payloads import (
    PAGE_ID,
    ZALO_APP_ID,
    ZALO_OA_ID,
    encode,
    messenger_echo_event,
    messenger_envelope,
    messenger_event,
    messenger_location_event,
    messenger_postback_event,
    messenger_text_event,
    sign_messenger,
    sign_zalo,
    zalo_follow_event,
    zalo_location_event,
    zalo_text_event,
)
from tests.fakes.zalo import FakeZalo

__all__ = [
    "FakeGraph", "FakeZalo", "PAGE_ID", "ZALO_APP_ID", "ZALO_OA_ID", "encode", "messenger_echo_event",
    "messenger_envelope", "messenger_event", "messenger_location_event", "messenger_postback_event",
    "messenger_text_event", "sign_messenger", "sign_zalo", "zalo_follow_event", "zalo_location_event",
    "zalo_text_event",
]
