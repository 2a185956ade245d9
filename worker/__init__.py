"""Turns Segment calls from Kafka into users, accounts, events and page views in Postgres."""
