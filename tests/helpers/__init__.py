"""Helpers shared by tests: tiny models and runs made on the CPU."""
