"""Benchmark cases for ``scripts/bench.py``: one module per topic, each with ``run(args) -> list[dict]``."""
