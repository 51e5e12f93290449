"""The durable outbox: submissions on SQLite (WAL, synchronous=FULL), encrypted at rest,
with states, schema migrations and the retry schedule. Imports nothing of the application."""
