"""Shared pieces of the benchmarks in ``bench/``: processes, wrk runs, peer servers.

Standard library only, so a benchmark runs from any Python 3.11 without installing more.
"""
