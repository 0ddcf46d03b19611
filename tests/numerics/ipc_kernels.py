"""A pytest plugin for nbval: kernels talk over Unix sockets named after their connection files, not TCP ports.

jupyter_client picks a kernel's five TCP ports by binding port 0 and letting go, and the kernel binds them a
moment later: a second run starting kernels at that moment can be handed the same ports, and one kernel dies
at start. ``make test`` runs the perturbed notebook pass (tests/numerics/run_perturbed.py loads this plugin)
side by side with the plain one; over IPC its kernels take no ports, so the two passes cannot collide. What a
cell prints does not depend on the transport.
"""

from __future__ import annotations

import os
import uuid

import nbval.kernel
from jupyter_client.manager import KernelManager
from jupyter_core.paths import jupyter_runtime_dir
from traitlets import CaselessStrEnum, default


class IpcKernelManager(KernelManager):
    """A KernelManager whose kernels use the ipc transport, each at its own absolute socket path.

    (jupyter_client's default path, ``kernel-ipc``, is relative: the kernel, started in the notebook's folder,
    would bind sockets there that the client, in the current folder, never finds.)
    """

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    @default("ip")
    def _unique_socket_path(self) -> str:
        folder = jupyter_runtime_dir()
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, f"nbval-kernel-{uuid.uuid4().hex[:12]}-ipc")  # sockets: this plus -1 ... -5


nbval.kernel.KernelManager = IpcKernelManager
