"""Benchmarks of issue 6: latency, throughput against a floor, the tick's cost, memory."""
