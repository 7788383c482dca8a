"""The office's use cases, one mixin per area of work."""
