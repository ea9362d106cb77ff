"""Rasa custom actions (rasa-sdk 3.6), one module per topic.

`rasa run actions` imports every module of this package and registers every Action subclass:

- ``answers``: ``action_answer`` (FAQ and small talk from the content store, after the safety
  screen) and ``action_exit``;
- ``handoff``: ``action_handoff`` (the risk answer and the handoff signal for the gateway);
- ``agency``: the agency check (``action_ask_agency_query``, ``validate_agency_form``,
  ``action_check_agency``);
- ``runtime``: shared state (content store, registry sessions), created on first use.

Nothing here does I/O at import.
"""
