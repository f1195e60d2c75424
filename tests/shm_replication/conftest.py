"""The shared-memory replication tests reuse the in-process replication harness."""
import os
import sys

_REPLICATION = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "replication")
if _REPLICATION not in sys.path:
    sys.path.insert(0, _REPLICATION)
