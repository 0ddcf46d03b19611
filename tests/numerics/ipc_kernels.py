"""A pytest plugin for nbval: kernels talk over Unix sockets of their own, not TCP ports.

jupyter_client picks a kernel's five TCP ports by binding port 0 and letting go, and the kernel binds them a
moment later: a second run starting kernels at that moment can be handed the same ports, and one kernel dies
at start. ``make test`` runs the perturbed notebook pass (tests/numerics/run_perturbed.py loads this plugin)
side by side with the plain one; over IPC its kernels take no ports, so the two passes cannot collide. What a
cell prints does not depend on the transport.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
import uuid

import nbval.kernel
from jupyter_client.manager import KernelManager
from jupyter_core.paths import jupyter_runtime_dir
from traitlets import CaselessStrEnum, default

# a Unix socket's path must fit in sun_path: 108 bytes on Linux, 104 on macOS
LONGEST_SOCKET_PATH = 100
_NAME = "nbval-kernel-{}-ipc"


@functools.cache
def socket_folder(runtime: str) -> str:
    """Jupyter's runtime folder, or a short private folder under /tmp where the socket paths would be too long."""
    if len(os.fsencode(os.path.join(runtime, _NAME.format("x" * 12) + "-5"))) <= LONGEST_SOCKET_PATH:
        os.makedirs(runtime, exist_ok=True)
        return runtime
    folder = tempfile.mkdtemp(prefix="nbval-", dir="/tmp" if os.path.isdir("/tmp") else None)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


class IpcKernelManager(KernelManager):
    """A KernelManager whose kernels use the ipc transport, each at its own absolute socket path.

    (jupyter_client's default path, ``kernel-ipc``, is relative: the kernel, started in the notebook's folder,
    would bind sockets there that the client, in the current folder, never finds.)
    """

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    @default("ip")
    def _unique_socket_path(self) -> str:  # the sockets are this plus -1 ... -5
        return os.path.join(socket_folder(jupyter_runtime_dir()), _NAME.format(uuid.uuid4().hex[:12]))


nbval.kernel.KernelManager = IpcKernelManager
