"""HTTP API, configuration, command-line interface and the composition root."""
