"""The hotline gateway: webhooks, conversation state, counselor console and content admin."""
