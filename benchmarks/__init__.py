"""Benchmarks: ``python -m benchmarks [--scale X] [name ...]`` runs every registered module's ``main``."""
