"""Time-ordered task ids (UUIDv7, RFC 9562), monotonic within a process."""

from __future__ import annotations

import os
import random
import threading
import time

_lock = threading.Lock()
_random = random.Random()  # ids need uniqueness, not secrecy
os.register_at_fork(after_in_child=_random.seed)  # forked processes must not share a stream
_last_ms = 0
_counter = 0


def new_id() -> str:
    """A UUIDv7 string; ids made later in the same process sort after earlier ones."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:  # 4096 ids in one millisecond: borrow the next one
                ms += 1
                _counter = 0
        else:
            _counter = 0
        _last_ms = ms
        counter = _counter
    rand_b = _random.getrandbits(62)
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand_b
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
