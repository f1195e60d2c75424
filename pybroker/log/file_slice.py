"""A byte range of a segment file, handed to the Fetch path for ``os.sendfile``.

``fd`` is a dup of the segment's fd: a dup costs one syscall per read and keeps the data
readable when retention or truncation deletes the segment, or the log cleaner replaces
it, before the fetch response is sent (the inode lives until the last fd closes). Refcounting segments would avoid that
syscall but needs deferred deletion and keeps a deleted segment's maps and indexes open;
the dup is simpler and cannot go wrong. The holder must call ``release()``.

If the file is truncated underneath after the slice was taken, ``os.sendfile`` returns 0
before ``length`` bytes are sent: the sender must treat 0 as end of data, not retry.
"""
from __future__ import annotations

import os


class FileSlice:
    __slots__ = ("fd", "position", "length", "first_offset", "last_offset")

    def __init__(self, fd: int, position: int, length: int, first_offset: int, last_offset: int):
        self.fd = fd
        self.position = position
        self.length = length
        self.first_offset = first_offset
        self.last_offset = last_offset

    def read(self) -> bytes:
        """The bytes of the slice (tests, tools, followers). Short if truncated underneath."""
        chunks = []
        done = 0
        while done < self.length:
            chunk = os.pread(self.fd, self.length - done, self.position + done)
            if not chunk:
                break
            chunks.append(chunk)
            done += len(chunk)
        return b"".join(chunks)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "FileSlice":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        # A forgotten release must not leak fds for the life of the broker.
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1

    def __repr__(self) -> str:
        return (f"FileSlice(fd={self.fd}, position={self.position}, length={self.length}, "
                f"offsets={self.first_offset}..{self.last_offset})")
