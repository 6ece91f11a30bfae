"""The event contract with the provinces: Avro encoding, report files, the producer.

Imports no Spark: a province's machine needs only this package and the domain.
"""
