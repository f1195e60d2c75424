"""The broker process: Kafka listener, request handlers, partitions."""
