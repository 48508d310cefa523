"""Outbound webhooks: signed notifications of governance events to each team's endpoints."""
