"""The perturbed notebook pass's kernels (tests/numerics/ipc_kernels.py) take no TCP ports and do start."""

import os
from pathlib import Path

import ipc_kernels
import nbval.kernel
import pytest


@pytest.mark.parametrize("runtime", ["runtime", "a runtime folder" + "/deeper" * 12], ids=["short", "too-long"])
def test_an_nbval_kernel_runs_over_ipc_at_an_absolute_path_of_its_own(tmp_path, monkeypatch, runtime):
    """A runtime folder too deep for a socket path (a Unix socket's is at most about 100 bytes) still works."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / runtime))
    assert nbval.kernel.KernelManager is ipc_kernels.IpcKernelManager
    folder = tmp_path / "a notebook's folder"  # the kernel starts here, the client stays where it is
    folder.mkdir()
    name = nbval.kernel.CURRENT_ENV_KERNEL_NAME
    manager, client = nbval.kernel.start_new_kernel(kernel_name=name, cwd=str(folder), startup_timeout=30)
    try:
        info = manager.get_connection_info()
        assert info["transport"] == "ipc" and os.path.isabs(info["ip"]), info
        sockets = [Path(f"{info['ip']}-{n}") for n in range(1, 6)]
        assert all(s.is_socket() for s in sockets), f"expected the kernel's sockets at {info['ip']}-1 ... -5"
        assert all(len(os.fsencode(s)) <= ipc_kernels.LONGEST_SOCKET_PATH for s in sockets), sockets
        reply = client.execute_interactive("1 + 1", timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        assert ipc_kernels.IpcKernelManager().ip != manager.ip  # each kernel its own sockets
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert not any(s.exists() for s in sockets)  # its sockets go with it
    assert list(folder.iterdir()) == []  # none in the notebook's folder
