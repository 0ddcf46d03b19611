"""The perturbed notebook pass's kernels (tests/numerics/ipc_kernels.py) take no TCP ports and do start."""

import os

import ipc_kernels
import nbval.kernel


def test_an_nbval_kernel_runs_over_ipc_at_an_absolute_path_of_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    assert nbval.kernel.KernelManager is ipc_kernels.IpcKernelManager
    folder = tmp_path / "a notebook's folder"  # the kernel starts here, the client stays where it is
    folder.mkdir()
    name = nbval.kernel.CURRENT_ENV_KERNEL_NAME
    manager, client = nbval.kernel.start_new_kernel(kernel_name=name, cwd=str(folder), startup_timeout=30)
    try:
        info = manager.get_connection_info()
        assert info["transport"] == "ipc" and os.path.isabs(info["ip"]), info
        sockets = sorted(p.name for p in (tmp_path / "runtime").iterdir())
        assert len(sockets) == 5 and all(name.startswith(os.path.basename(info["ip"])) for name in sockets), sockets
        reply = client.execute_interactive("1 + 1", timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        other = ipc_kernels.IpcKernelManager()
        assert other.ip != manager.ip  # each kernel its own sockets: two runs side by side cannot share one
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert list((tmp_path / "runtime").iterdir()) == []  # its sockets go with it
    assert list(folder.iterdir()) == []  # none in the notebook's folder
