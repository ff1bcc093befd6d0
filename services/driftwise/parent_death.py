"""What happens to a server when the process that started it dies: run as a script.

    python -I -S parent_death.py exec SIGNAL PARENT_PID -- COMMAND [ARG ...]
    python -I -S parent_death.py watch PARENT_PID GROUP PATTERN [PATTERN ...]

`driftwise.supervision` starts its servers in sessions of their own, which outlive a parent
killed without stopping them (SIGKILL, the OOM killer). Linux only.

``exec`` asks the kernel for SIGNAL when the parent dies, however it dies
(``prctl(PR_SET_PDEATHSIG)``), then execs COMMAND: the setting survives exec, and the server keeps
this process's pid. A script rather than a ``preexec_fn``: Python code between fork and exec is not
safe in a process with threads (a lock held by another thread at the fork is never released).

``watch`` is the watchdog started beside such a server, for the files it leaves (its work
directory, its shared memory): once PARENT_PID is no longer its parent (it died) and process group
GROUP (the server's) is gone, it removes what the glob patterns match, and exits. While the parent
lives it does nothing: the parent stops the server, then kills and reaps the watchdog.

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
_POLL_S = 0.5
_USAGE = f"""usage: {sys.argv[0]} exec SIGNAL PARENT_PID -- COMMAND [ARG ...]
       {sys.argv[0]} watch PARENT_PID GROUP PATTERN [PATTERN ...]"""


def exec_with_death_signal(death_signal: int, parent: int, command: list[str]) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, death_signal, 0, 0, 0) != 0:
        sys.exit(f"parent_death: prctl(PR_SET_PDEATHSIG) failed: {os.strerror(ctypes.get_errno())}")
    if os.getppid() != parent:  # the parent died before prctl: no signal will ever come
        sys.exit(f"parent_death: parent {parent} gone before {command[0]} started; not starting it")
    # Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across exec
    # (subprocess restores them for its children: restore_signals)
    for name in ("SIGPIPE", "SIGXFSZ"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    os.execv(command[0], command)


def watch(parent: int, group: int, patterns: list[str]) -> None:
    os.chdir("/")
    while os.getppid() == parent:  # re-parented once the parent has died
        time.sleep(_POLL_S)
    # the server got its death signal; Triton's python stubs stop by themselves once it is gone
    while _group_alive(group):
        time.sleep(_POLL_S)
    for pattern in patterns:
        for path in glob.glob(pattern):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)


def _group_alive(group: int) -> bool:
    """Whether a live (not zombie) process is in process group `group`."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()  # the name, in (), may hold anything
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            return True
    return False


def main(argv: list[str]) -> None:
    if len(argv) >= 5 and argv[0] == "exec" and argv[3] == "--":
        exec_with_death_signal(int(argv[1]), int(argv[2]), argv[4:])
    elif len(argv) >= 4 and argv[0] == "watch":
        watch(int(argv[1]), int(argv[2]), argv[3:])
    else:
        sys.exit(_USAGE)


if __name__ == "__main__":
    main(sys.argv[1:])
