"""Sidecar beside an LLM auth proxy: relays its metrics and adds derived ones."""
