"""The domain model in plain Python: periods and the reporting calendar, reference data, bases, scoring.

Imports no engine (no Spark, Kafka, Airflow or Great Expectations).
"""
