"""Data generators for tests and benchmarks (not used by the library)."""
