"""Kafka's storage layer: segments, their offset and time indexes, the partition log,
start-up recovery and checkpoints."""
from pybroker.log.file_slice import FileSlice
from pybroker.log.log import AppendInfo, Log
from pybroker.log.segment import LogSegment

__all__ = ["AppendInfo", "FileSlice", "Log", "LogSegment"]
