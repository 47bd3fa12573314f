"""Speed benchmarks of the exporter sidecar (`make bench`)."""
