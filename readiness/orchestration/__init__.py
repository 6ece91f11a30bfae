"""Around the jobs: calendar decisions, locks, freezes, alerts, run health and the task bodies the DAGs call.

Every module but ``tasks`` imports no Spark, so the DAG processor can import what the DAG files need.
"""
