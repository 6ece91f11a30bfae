"""The lake: table names (``tables``, no pyspark), Spark schemas, the Spark session, Delta I/O and the Delta log."""
