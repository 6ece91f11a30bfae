"""Benchmarks of the readiness platform: ``python -m bench.run [--quick] [--only ...]``.

Every speed figure is a ratio against a baseline measured in the same run on the same machine;
absolute times are reported too but drift on shared machines. Not part of ``make test``.
"""
