"""A stand-in for the LLM auth proxy: /metrics behind a Bearer token, scripted traffic."""
