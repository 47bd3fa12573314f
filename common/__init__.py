"""Plumbing shared by the exporter, the bridge, the simulator, the local stack and the benchmarks."""
