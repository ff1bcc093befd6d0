"""What a local Triton leaves in its owner's data directory, to find it again after a crash.

`driftwise serve` starts its Triton with ``record_path=<data_dir>/local-triton.json``: the file
names the running ``tritonserver`` (pid = process group id), its python-backend shared-memory
prefix, its work directory and the driftwise process that owns it. A clean stop removes it. After
a crash the death signal stops Triton (``driftwise.parent_death``), but a Triton that hangs then, or
one started by a version without it, stays; the next start on the same data directory sweeps it
(:func:`sweep_stale_triton`): its process group is stopped, its shared memory and work directory
removed, and what was cleaned is logged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from driftwise.supervision import process_start_time, stop_stray_group

__all__ = ["TritonRecord", "remove_shm_regions", "shm_regions", "sweep_stale_triton"]

_log = logging.getLogger(__name__)

SHM_DIR = Path("/dev/shm")
SHM_PREFIX_PATTERN = re.compile(r"triton_python_backend_shm_region_driftwise-[0-9a-f]{12}_")
WORKDIR_PREFIX = "driftwise-triton-"


def shm_regions(shm_prefix: str) -> str:
    """The glob pattern of a server's python-backend shared-memory regions."""
    return str(SHM_DIR / f"{glob.escape(shm_prefix)}*")


def remove_shm_regions(shm_prefix: str) -> list[str]:
    """Remove the regions a killed server left (a clean exit removes them); returns their paths."""
    regions = glob.glob(shm_regions(shm_prefix))
    for name in regions:
        with contextlib.suppress(OSError):
            os.unlink(name)
    return regions


@dataclass(frozen=True)
class TritonRecord:
    pid: int  # tritonserver, the leader of its own process group
    shm_prefix: str  # unique to the server; on the command line of every process of its group
    workdir: str  # its backend directory (a temporary directory)
    owner_pid: int  # the driftwise process that started it
    owner_start_time: int  # with owner_pid: tells that process from a later one with its pid

    def write(self, path: Path) -> None:
        """Write atomically: a crash leaves the previous record or this one, never half of it."""
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_text(json.dumps(dataclasses.asdict(self)) + "\n")
        os.replace(partial, path)

    @classmethod
    def read(cls, path: Path) -> TritonRecord | None:
        """The record at `path`; None when there is none, or it is not one (logged)."""
        try:
            fields = json.loads(path.read_text())
            record = cls(**fields)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            _log.warning("ignoring %s: not a local Triton record (%s)", path, exc)
            return None
        # it names things to kill and delete: only what a LocalTritonServer could have written
        workdir = Path(record.workdir)
        if not SHM_PREFIX_PATTERN.fullmatch(record.shm_prefix) or not workdir.name.startswith(WORKDIR_PREFIX):
            _log.warning("ignoring %s: not a local Triton record (%s)", path, record)
            return None
        return record

    def owner_alive(self) -> bool:
        """Whether the driftwise process that started this Triton is still running."""
        return process_start_time(self.owner_pid) == self.owner_start_time


def sweep_stale_triton(record_path: Path, *, stop_timeout_s: float = 10.0) -> None:
    """Stop the Triton that `record_path` names, if still there, remove its shared memory and work
    directory, then the record. A Triton whose owner is still running (another process on the same
    data directory) is left alone."""
    record = TritonRecord.read(record_path)
    if record is None:
        return
    if record.owner_pid != os.getpid() and record.owner_alive():
        _log.warning(
            "%s: tritonserver pid %d belongs to driftwise pid %d, still running; leaving it alone",
            record_path,
            record.pid,
            record.owner_pid,
        )
        return
    stopped = stop_stray_group(record.pid, record.shm_prefix, stop_timeout_s)
    regions = remove_shm_regions(record.shm_prefix)
    workdir = Path(record.workdir)
    had_workdir = workdir.is_dir() and not workdir.is_symlink()
    if had_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    if stopped or regions or had_workdir:
        _log.warning(
            "cleaned up after a local Triton left by driftwise pid %d: stopped %d process(es) of "
            "tritonserver pid %d %s, removed %d shared-memory region(s)%s",
            record.owner_pid,
            len(stopped),
            record.pid,
            stopped,
            len(regions),
            f" and {workdir}" if had_workdir else "",
        )
    record_path.unlink(missing_ok=True)
