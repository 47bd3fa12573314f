"""Alertmanager webhook bridge to Slack, Discord, email and generic webhooks."""
