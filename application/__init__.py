"""The application layer: the eventsourcing Application and its use cases, the event store, settings,
the database and the composition root that api/ (HTTP) and workers/ (relay, Kafka consumers) share."""
