"""One module per group of Kafka APIs; each declares its request and response fields
with the versions they appear in (as Kafka's message definitions do)."""
