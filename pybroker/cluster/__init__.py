"""Cluster metadata as pure logic: topics, partitions, names (no sockets, no files)."""
