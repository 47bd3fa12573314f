"""The whole stack on one machine without Docker: time-scaled configs and the process runner for the demo."""
