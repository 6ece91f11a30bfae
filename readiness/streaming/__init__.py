"""The streaming mode: a long-lived service from Kafka to gold on one warm Spark session, and its health."""
