"""Kafka's record format: RecordBatch v2 (batch.py), its varints and compression codecs."""
