"""Background work: the projection runners (in-process now; Kafka consumers later)."""
