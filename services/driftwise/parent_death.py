"""Make a server die with the process that started it, and clean up after it: run as a script.

    python -I -S parent_death.py SIGNAL PARENT_PID [PATTERN ...] -- COMMAND [ARG ...]

`driftwise.supervision` starts its servers through this script (Linux only). It asks the kernel
for SIGNAL when the parent dies, even by SIGKILL (``prctl(PR_SET_PDEATHSIG)``), then execs
COMMAND: the setting survives exec, and the server keeps this process's pid. A child exec'ing a
script rather than a ``preexec_fn``: Python code between fork and exec is not safe in a process
with threads (a lock held by another thread at the fork is never released).

Given PATTERNs (glob patterns: the server's work directory, its shared memory), it first forks a
watchdog that stays in the server's process group: once the server has exited and the rest of the
group is gone (up to 10 s), it removes what the patterns match, and exits. A server stopped by its
parent takes the watchdog with it (the parent SIGKILLs the group); after a crash of the parent,
nobody else is left to remove those files.

Standard library only, and run with ``-I -S``: it starts in about 30 ms.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import shutil
import signal
import sys
import time

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_WATCH_INTERVAL_S = 0.5
_GROUP_EXIT_WAIT_S = 10.0


def main(argv: list[str]) -> None:
    if "--" not in argv or argv.index("--") < 2 or argv.index("--") == len(argv) - 1:
        sys.exit(f"usage: {sys.argv[0]} SIGNAL PARENT_PID [PATTERN ...] -- COMMAND [ARG ...]")
    split = argv.index("--")
    death_signal, parent = int(argv[0]), int(argv[1])
    patterns, command = argv[2:split], argv[split + 1 :]

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, death_signal, 0, 0, 0) != 0:
        sys.exit(f"parent_death: prctl(PR_SET_PDEATHSIG) failed: {os.strerror(ctypes.get_errno())}")
    if os.getppid() != parent:  # the parent died before prctl: no signal will ever come
        sys.exit(f"parent_death: parent {parent} gone before {command[0]} started; not starting it")

    if patterns:
        server = os.getpid()
        if os.fork() == 0:  # the child's death signal is cleared by fork: it outlives the server
            _clean_up_after(server, patterns)
            os._exit(0)

    # Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across exec
    # (subprocess restores them for its children: restore_signals)
    for name in ("SIGPIPE", "SIGXFSZ"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    os.execv(command[0], command)


def _clean_up_after(server: int, patterns: list[str]) -> None:
    """Wait until `server` (this process's parent) has exited and the rest of its process group
    (Triton's python stubs stop by themselves once it is gone) has followed, then remove what
    `patterns` match."""
    os.chdir("/")
    while os.getppid() == server:  # after its exit, this process is re-parented
        time.sleep(_WATCH_INTERVAL_S)
    deadline = time.monotonic() + _GROUP_EXIT_WAIT_S
    while _others_in_group() and time.monotonic() < deadline:
        time.sleep(0.1)
    for pattern in patterns:
        for path in glob.glob(pattern):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)


def _others_in_group() -> bool:
    """Whether another live (not zombie) process is in this process's group."""
    group, me = os.getpgrp(), os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            return True
    return False


if __name__ == "__main__":
    main(sys.argv[1:])
