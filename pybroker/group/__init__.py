"""Consumer groups: the classic group protocol's state machine, the coordinator of many
groups, durable committed offsets, the "consumer" embedded protocol and its assignors.

Everything here except offset_store is pure logic: no sockets, threads or clocks; time
comes in as ``now_ms``.
"""
