"""Helpers shared by the tests: a recording webhook, free loopback ports."""
