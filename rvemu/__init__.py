"""rvemu: a hackable RISC-V (RV64GC) system emulator with a Numba-compiled core."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path


def _set_numba_cache_dir() -> None:
    # Numba only checks a cached function's own file for changes, not the files of the
    # functions it calls; keying the cache folder on a hash of every compiled source makes
    # any change to the core start from a clean cache. One folder serves every process.
    here = Path(__file__).parent
    digest = hashlib.sha1()
    for path in sorted(here.rglob("*.py")):
        text = path.read_bytes()
        # (isa.py, state.py, layout.py and region_abi.py have no njit, but what they define
        # is compiled in; entry_points.py, aside.py and native_build.py make the core's
        # native libraries, kept there too)
        if b"njit" in text or path.name in (
            "isa.py",
            "state.py",
            "layout.py",
            "entry_points.py",
            "aside.py",
            "native_build.py",
            "region_abi.py",
        ):
            digest.update(text)
    base = os.environ.get("RVEMU_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rvemu"
    )
    cache_dir = os.path.join(base, "numba-" + digest.hexdigest()[:16])
    os.environ["NUMBA_CACHE_DIR"] = cache_dir
    if "numba" in sys.modules:  # imported before us: tell its already-read config too
        sys.modules["numba"].config.CACHE_DIR = cache_dir


_set_numba_cache_dir()

__all__ = ["Machine", "RunResult"]


def __getattr__(name: str) -> object:
    # The machine is imported when first asked for (rvemu.Machine, or rvemu.cpu and the
    # other packages it loads), so that a process that needs none (the client of
    # `rvemu boot --api-sock`) does not load numpy and Numba. Other names are not
    # looked up here: `from . import initramfs` must not load the machine either.
    if name in __all__ or name in ("cpu", "mmu", "devices", "tier2"):
        import importlib

        machine = importlib.import_module(".machine", __name__)
        return getattr(machine, name) if name in __all__ else globals()[name]
    raise AttributeError(f"module 'rvemu' has no attribute {name!r}")
