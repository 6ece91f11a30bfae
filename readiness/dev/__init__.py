"""Local development and test tooling: the local broker, the local Airflow harness, the simulator.

Nothing in the package outside ``dev`` imports it, except the command line that exposes it.
"""
