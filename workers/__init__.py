"""Processes of the distributed mode: the relay that publishes stored events to Kafka,
the projection workers that keep the views from it, and a development broker."""
