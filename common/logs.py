"""PLACEHOLDER until the common branch lands."""

from exporter.logs import JsonFormatter, RedactFilter, setup_logging  # noqa: F401
