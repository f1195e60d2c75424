"""A wake-up word in shared memory: Linux futexes across processes.

A reader that found nothing new waits with ``wait(expected)``: the kernel puts it to
sleep only if the word still holds ``expected`` (the value it read *before* looking for
news), so a wake-up between its look and its wait is never lost. The writer changes the
word, then ``wake()``s every waiter — one syscall, whether or not anyone waits.

The futex is shared (no FUTEX_PRIVATE_FLAG): the word lives in a MAP_SHARED mapping that
other processes map at other addresses, and the kernel keys it by the underlying page.
ctypes releases the GIL around the syscall, so a waiting thread blocks nothing else.

Where futexes are not available (not Linux, an architecture whose syscall number is not
listed, no libc), ``SUPPORTED`` is False and callers keep their sleep-based back-off.
"""
from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct

# futex(2)'s syscall number by machine (asm/unistd.h).
_SYS_FUTEX = {"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98, "i386": 240, "i686": 240,
              "armv7l": 240, "ppc64le": 221, "s390x": 238, "riscv64": 98}.get(platform.machine().lower())
FUTEX_WAIT = 0
FUTEX_WAKE = 1
_INT_MAX = 0x7FFFFFFF
WORD = struct.Struct("@I")


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _load_syscall():
    if _SYS_FUTEX is None or not os.uname().sysname == "Linux":
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syscall
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_long
    return fn


_syscall = _load_syscall()
SUPPORTED = _syscall is not None


class Futex:
    """The 4-byte word at ``offset`` of the writable shared buffer ``buf`` (a memoryview
    of the region's mmap). ``offset`` must be 4-aligned. The buffer must outlive this
    object's use (the address is taken once; no buffer export is kept, so the region can
    still be closed)."""

    def __init__(self, buf, offset: int):
        if offset % 4:
            raise ValueError(f"a futex word must be 4-aligned, got offset {offset}")
        self._buf = buf
        self._offset = offset
        self._address = None
        if SUPPORTED:
            anchor = ctypes.c_char.from_buffer(buf, offset)
            self._address = ctypes.addressof(anchor)
            del anchor  # drop the buffer export at once

    def value(self) -> int:
        return WORD.unpack_from(self._buf, self._offset)[0]

    def bump(self) -> None:
        """Change the word (the single writer's read-modify-write; readers only compare)."""
        WORD.pack_into(self._buf, self._offset, (self.value() + 1) & 0xFFFFFFFF)

    def wake(self) -> int:
        """Wake every process waiting on the word; how many were woken (0 unsupported)."""
        if self._address is None:
            return 0
        woken = _syscall(_SYS_FUTEX, ctypes.c_void_p(self._address), FUTEX_WAKE, _INT_MAX, None, None, 0)
        return max(0, woken)

    def wait(self, expected: int, timeout_s: float) -> bool:
        """Sleep until woken or ``timeout_s`` passed, unless the word is no longer
        ``expected``. True when woken or the word had changed; False on timeout (and
        always False when unsupported, after no wait at all)."""
        if self._address is None:
            return False
        timeout_s = max(0.0, timeout_s)
        ts = _Timespec(int(timeout_s), int((timeout_s % 1.0) * 1e9))
        result = _syscall(_SYS_FUTEX, ctypes.c_void_p(self._address), FUTEX_WAIT,
                          ctypes.c_uint(expected), ctypes.byref(ts), None, 0)
        if result == 0:
            return True
        err = ctypes.get_errno()
        if err == errno.EAGAIN:      # the word had changed already
            return True
        if err in (errno.ETIMEDOUT, errno.EINTR):
            return err == errno.EINTR
        raise OSError(err, f"futex wait: {os.strerror(err)}")
