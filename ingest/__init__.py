"""The front door: HTTP, authentication, the wire model and the Kafka producer."""
