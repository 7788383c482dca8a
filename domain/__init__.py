"""The liudong domain: residents, housing sites and the rules between them.

Pure Python: the standard library and ``eventsourcing.domain`` only. Nothing here
knows about HTTP, PostgreSQL or Kafka.
"""
