"""The benchmark harness behind `bench/run.py`: host preparation, bundles, timed spawning,
the measurements and the reports. Each module owns one of those steps."""
