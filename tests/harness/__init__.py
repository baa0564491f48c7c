"""Real servers for the tests and the benchmarks, started on 127.0.0.1 and stopped by them."""
