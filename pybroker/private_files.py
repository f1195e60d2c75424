"""Private by default: what pybroker writes under a data dir is readable by its owner only.

Segments, indexes, checkpoints, the metadata log, the offsets store and the logs hold
message payloads and cluster state, which are nobody else's business. Every pybroker
process (``pybroker up``, its supervisor and the brokers it spawns, a broker run on its
own) calls ``make_private`` before it creates anything: the process umask gains
``PRIVATE_UMASK``, so files come out 0600 and directories 0700 whatever the user's umask
(bits a stricter umask already clears stay cleared), and the data dir itself is made 0700
on every start. An existing data dir from an older version (0755) is closed that way too:
the files already in it keep their modes, but no other user can reach them.
"""
from __future__ import annotations

import os

PRIVATE_UMASK = 0o077
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private(directory: str) -> None:
    """Tighten this process's umask and create (or chmod) ``directory`` 0700."""
    os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)
    os.makedirs(directory, mode=PRIVATE_DIR_MODE, exist_ok=True)
    os.chmod(directory, PRIVATE_DIR_MODE)
