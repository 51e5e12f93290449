"""Performance suite, separate from the tests: start-up time and memory, receipt rendering, outbox
throughput, and a browser-based terminal for comparison. Run with `python -m benchmarks`."""
