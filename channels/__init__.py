"""Platform adapters: verify and parse webhooks, send through each platform's API."""
