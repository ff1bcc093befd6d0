"""The Triton pieces inside the installed ``nvidia-pytriton`` wheel, and how to run them here.

The launch recipe, as verified with the pinned wheel on Linux x86-64:

* binary ``site-packages/pytriton/tritonserver/bin/tritonserver``;
* a backend directory whose ``python/`` holds ``libtriton_python.so`` and
  ``triton_python_backend_utils.py`` (from ``pytriton/tritonserver/backends/python/``) and the
  stub ``pytriton/tritonserver/python_backend_stubs/3.11/triton_python_backend_stub``;
* the running interpreter's ``bin`` first on ``PATH`` (the stub finds ``python3`` there),
  ``LD_LIBRARY_PATH`` = ``sysconfig LIBDIR`` then ``site-packages/nvidia_pytriton.libs``;
* ``--disable-auto-complete-config`` and loopback addresses (the command line is
  :class:`driftwise.inference.triton_server.LocalTritonServer`'s).

The python stub embeds the venv's interpreter in isolated mode (``PYTHONPATH`` is ignored), so the
models' ``import driftwise`` needs the package installed in that environment (``pip install -e .``
here, ``pip install .`` in the Triton image).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path

__all__ = ["TritonStartError", "TritonToolchain", "find_toolchain"]

_BACKEND_FILES = ("libtriton_python.so", "triton_python_backend_utils.py")


class TritonStartError(RuntimeError):
    """Triton did not become ready (early exit, timeout, missing files); includes the log tail."""


class TritonToolchain:
    """Locations of the Triton pieces inside the installed ``nvidia-pytriton`` wheel."""

    def __init__(self, pytriton_dir: Path) -> None:
        python_tag = f"{sys.version_info.major}.{sys.version_info.minor}"
        server_dir = pytriton_dir / "tritonserver"
        self.binary = server_dir / "bin" / "tritonserver"
        self.python_backend_dir = server_dir / "backends" / "python"
        self.stub = server_dir / "python_backend_stubs" / python_tag / "triton_python_backend_stub"
        self.bundled_libs = pytriton_dir.parent / "nvidia_pytriton.libs"

    def check(self) -> None:
        """Raise :class:`TritonStartError` if a required file is missing."""
        required = [
            self.binary,
            *(self.python_backend_dir / name for name in _BACKEND_FILES),
            self.stub,
            self.bundled_libs,
        ]
        missing = [str(path) for path in required if not path.exists()]
        if missing:
            raise TritonStartError(
                "nvidia-pytriton's Triton files are missing (is nvidia-pytriton installed for "
                f"this Python {sys.version_info.major}.{sys.version_info.minor}?): " + ", ".join(missing)
            )

    def make_backend_dir(self, workdir: Path) -> Path:
        """``workdir/backends`` with the python backend and this Python's stub in ``python/``
        (what ``--backend-directory`` takes)."""
        backend_dir = workdir / "backends"
        python_dir = backend_dir / "python"
        python_dir.mkdir(parents=True)
        for name in _BACKEND_FILES:
            shutil.copy2(self.python_backend_dir / name, python_dir / name)
        shutil.copy2(self.stub, python_dir / self.stub.name)
        return backend_dir

    def child_environment(self) -> dict[str, str]:
        """This process's environment with this interpreter first on ``PATH`` and the libraries
        Triton and the stub load on ``LD_LIBRARY_PATH``."""
        env = dict(os.environ)
        env["PATH"] = _prepend(str(Path(sys.executable).parent), env.get("PATH"))
        libdir = sysconfig.get_config_var("LIBDIR")
        libs = [str(libdir)] if libdir else []
        libs.append(str(self.bundled_libs))
        env["LD_LIBRARY_PATH"] = _prepend(os.pathsep.join(libs), env.get("LD_LIBRARY_PATH"))
        return env


def find_toolchain() -> TritonToolchain:
    """Locate the ``pytriton`` package without importing it (its import is heavy)."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise TritonStartError("nvidia-pytriton is not installed: no 'pytriton' package found")
    toolchain = TritonToolchain(Path(next(iter(spec.submodule_search_locations))))
    toolchain.check()
    return toolchain


def _prepend(value: str, existing: str | None) -> str:
    return value if not existing else f"{value}{os.pathsep}{existing}"
