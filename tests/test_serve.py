"""`rvemu serve --api-sock` (rvemu/serve.py) and `rvemu boot --api-sock`: one server on a
temporary socket, many machines through its HTTP API."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from toolchain import build_elf

from rvemu.apiclient import Api, ApiError
from rvemu.benchserve import Server, start_and_pause

REPO = Path(__file__).resolve().parent.parent
IMAGES = REPO / "build" / "unikernel"
HELLO = str(IMAGES / "hello.elf")
GREETING = b"Hello from the rvemu unikernel!\r\n"


@pytest.fixture(scope="module")
def server() -> Server:
    subprocess.run(
        ["make", "-s", "-C", str(REPO / "unikernel"), "all"], check=True, capture_output=True
    )
    with Server(workers=2, cwd=str(REPO)) as running:
        yield running


@pytest.fixture(scope="module")
def spin() -> str:
    """A guest that never ends."""
    return str(build_elf("serve-spin", ".globl _start\n_start: j _start\n"))


def run(api: Api, mid: str, config: dict) -> tuple[bytes, dict]:
    """Create, start, read the console to the end; (console, status)."""
    api.request("PUT", f"/machines/{mid}", config)
    api.request("PUT", f"/machines/{mid}/actions", {"action_type": "InstanceStart"})
    console = api.request("GET", f"/machines/{mid}/console") or b""
    return console, api.request("GET", f"/machines/{mid}")


def wait_for(api: Api, mid: str, states: tuple[str, ...]) -> dict:
    deadline = time.monotonic() + 60
    while True:
        info = api.request("GET", f"/machines/{mid}")
        if info["state"] in states or time.monotonic() > deadline:
            return info
        time.sleep(0.01)


def test_many_machines_at_once(server: Server) -> None:
    """Eight clients, each booting three machines (hello and crash, whose panic powers
    off with status 255), all at the same time over both workers."""
    results: dict[str, tuple[bytes, dict]] = {}
    errors: list[BaseException] = []

    def client(n: int) -> None:
        try:
            with Api(server.path) as api:
                for i in range(3):
                    image = "crash" if (n + i) % 3 == 0 else "hello"
                    mid = f"many-{n}-{i}-{image}"
                    results[mid] = run(api, mid, {"kernel": str(IMAGES / f"{image}.elf")})
                    api.request("DELETE", f"/machines/{mid}")
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 24
    workers = set()
    for mid, (console, info) in results.items():
        assert info["state"] == "exited" and info["reason"] == "poweroff", info
        workers.add(info["worker"])
        if mid.endswith("hello"):
            assert console == GREETING and info["exit_code"] == 0
        else:
            assert console.startswith(b"crash: about to execute ebreak\r\n")
            assert b"mtval=" in console and b"still alive" not in console
            assert info["exit_code"] == 255
    assert len(workers) == 2  # (both workers served machines)
    with Api(server.path) as api:
        assert not [m for m in api.request("GET", "/machines") if m["id"].startswith("many-")]


def test_options_reach_the_machine(server: Server) -> None:
    with Api(server.path) as api:
        console, info = run(
            api, "entropy", {"kernel": str(IMAGES / "entropy.elf"), "rng": True, "memory": "64M"}
        )
        assert info["exit_code"] == 0 and b"no virtio-rng" not in console, console
        assert info["memory"] == "64M" and info["rng"] is True
        console, info = run(api, "limited", {"kernel": HELLO, "max_instructions": 50})
        assert info["reason"] == "limit" and info["instructions"] == 50 and console == b""
        for mid in ("entropy", "limited"):
            api.request("DELETE", f"/machines/{mid}")


def test_pause_snapshot_resume_and_restore(server: Server, tmp_path: Path) -> None:
    """A machine paused in the middle of its run, snapshotted through the API, then
    resumed; a second machine made from the snapshot prints exactly what the first
    printed after the snapshot, and both end as an uninterrupted run does."""
    snap = tmp_path / "heap.snap"
    with Api(server.path) as api:
        paused = start_and_pause(api, "heap", str(IMAGES / "heap.elf"))
        assert paused["state"] == "paused" and paused["instructions"] > 0, paused
        api.request("PUT", "/machines/heap/snapshot", {"path": str(snap)})
        before = api.request("GET", "/machines/heap/console?follow=false") or b""
        assert len(before) == paused["console_bytes"]
        api.request("PUT", "/machines/heap/actions", {"action_type": "Resume"})
        whole = api.request("GET", "/machines/heap/console")
        first = api.request("GET", "/machines/heap")
        rest, second = run(api, "heap-restored", {"snapshot": str(snap)})
        assert first["reason"] == second["reason"] == "poweroff"
        assert first["exit_code"] == second["exit_code"] == 0
        assert whole == before + rest
        assert whole.endswith(b"heap: 0 errors after 4 rounds of 500 blocks\r\n")
        assert first["instructions"] == paused["instructions"] + second["instructions"]
        with pytest.raises(ApiError) as e:  # (no snapshot of a machine that has ended)
            api.request("PUT", "/machines/heap/snapshot", {"path": str(snap)})
        assert e.value.status == 409
        for mid in ("heap", "heap-restored"):
            api.request("DELETE", f"/machines/{mid}")
    # the file is an ordinary snapshot: rvemu resume goes on from it
    r = subprocess.run(
        [sys.executable, "-m", "rvemu", "resume", str(snap)],
        capture_output=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert r.returncode == 0 and r.stdout == rest, r.stderr


def test_snapshot_of_a_machine_not_started(server: Server, tmp_path: Path) -> None:
    snap = tmp_path / "hello.snap"
    with Api(server.path) as api:
        api.request("PUT", "/machines/unstarted", {"kernel": HELLO})
        api.request("PUT", "/machines/unstarted/snapshot", {"path": str(snap)})
        api.request("PUT", "/machines/unstarted/actions", {"action_type": "InstanceStart"})
        assert api.request("GET", "/machines/unstarted/console") == GREETING
        api.request("DELETE", "/machines/unstarted")
        console, info = run(api, "from-file", {"snapshot": str(snap)})
        assert console == GREETING and info["exit_code"] == 0
        api.request("DELETE", "/machines/from-file")


def test_stop_and_delete_a_running_machine(server: Server, spin: str) -> None:
    with Api(server.path) as api:
        api.request("PUT", "/machines/spin", {"kernel": spin})
        api.request("PUT", "/machines/spin/actions", {"action_type": "InstanceStart"})
        api.request("PUT", "/machines/spin/actions", {"action_type": "Stop"})
        info = api.request("GET", "/machines/spin")
        assert info["state"] == "stopped" and info["reason"] == "stopped", info
        with pytest.raises(ApiError) as e:
            api.request("PUT", "/machines/spin/actions", {"action_type": "InstanceStart"})
        assert e.value.status == 409
        api.request("DELETE", "/machines/spin")
        # deleting a machine that runs stops it
        api.request("PUT", "/machines/spin2", {"kernel": spin})
        api.request("PUT", "/machines/spin2/actions", {"action_type": "InstanceStart"})
        api.request("DELETE", "/machines/spin2")
        with pytest.raises(ApiError) as e:
            api.request("GET", "/machines/spin2")
        assert e.value.status == 404
        for worker in api.request("GET", "/stats")["workers"]:
            assert worker["live"] == 0 or wait_live_zero(api), worker


def wait_live_zero(api: Api) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(w["live"] == 0 for w in api.request("GET", "/stats")["workers"]):
            return True
        time.sleep(0.05)
    return False


def raw(path: str, request: bytes) -> tuple[int, dict]:
    """Send bytes as they are; the status and JSON body of the answer."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        while len(body) < length:
            body += s.recv(65536)
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize(
    "method, path, body, status, fault",
    [
        ("PUT", "/machines/e1", b"{not json", 400, "not JSON"),
        ("PUT", "/machines/e1", b"[1, 2]", 400, "JSON object"),
        ("PUT", "/machines/e1", b'{"kernel": "/no/such/kernel.elf"}', 400, "no such file"),
        ("PUT", "/machines/e1", b'{"kernel": "README.md"}', 400, "README.md"),
        ("PUT", "/machines/e1", b'{"kernel": "build/unikernel/hello.elf", "mem": 1}', 400,
         "unknown field 'mem'"),
        ("PUT", "/machines/e1", b'{"kernel": "build/unikernel/hello.elf", "memory": "lots"}',
         400, "bad memory size"),
        ("PUT", "/machines/e1", b'{"kernel": "build/unikernel/hello.elf", "rng": "yes"}', 400,
         "rng must be bool"),
        ("PUT", "/machines/e1", b"{}", 400, "a kernel or a snapshot"),
        ("PUT", "/machines/e1", b'{"snapshot": "README.md"}', 400, "not an rvemu snapshot"),
        ("PUT", "/machines/e1", b"", 400, "needs a JSON body"),
        ("GET", "/machines/nobody", b"", 404, "no machine 'nobody'"),
        ("GET", "/machines/nobody/console", b"", 404, "no machine 'nobody'"),
        ("PUT", "/machines/nobody/actions", b'{"action_type": "InstanceStart"}', 404,
         "no machine"),
        ("PUT", "/machines/bad%20id", b"{}", 400, "machine ids"),
        ("POST", "/machines/e1", b"{}", 405, "use PUT, GET or DELETE"),
        ("GET", "/nothing/here", b"", 404, "no such resource"),
    ],
)  # fmt: skip
def test_bad_requests_get_a_fault_message(
    server: Server, method: str, path: str, body: bytes, status: int, fault: str
) -> None:
    request = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    got, answer = raw(server.path, request.encode() + body)
    assert got == status and fault in answer["fault_message"], answer


def test_malformed_http_and_conflicts(server: Server) -> None:
    got, answer = raw(server.path, b"HELLO\r\n\r\n")
    assert got == 400 and "request line" in answer["fault_message"]
    got, answer = raw(server.path, b"PUT /machines/x HTTP/1.1\r\nContent-Length: zz\r\n\r\n")
    assert got == 400 and "Content-Length" in answer["fault_message"]
    with Api(server.path) as api:
        api.request("PUT", "/machines/twice", {"kernel": HELLO})
        for body, status in (
            ({"action_type": "Reboot"}, 400),  # not an action
            ({"action_type": "Resume"}, 409),  # not paused
            ({"action_type": "Pause"}, 409),  # not running
        ):
            with pytest.raises(ApiError) as e:
                api.request("PUT", "/machines/twice/actions", body)
            assert e.value.status == status, body
        with pytest.raises(ApiError) as e:
            api.request("PUT", "/machines/twice", {"kernel": HELLO})
        assert e.value.status == 409 and "exists" in str(e.value)
        api.request("DELETE", "/machines/twice")
        # the connection still serves after all those errors
        assert run(api, "after-errors", {"kernel": HELLO})[0] == GREETING
        api.request("DELETE", "/machines/after-errors")


def test_a_worker_that_dies_is_replaced(server: Server, spin: str) -> None:
    """Machines on a worker that died end as failed; the server starts another worker."""
    with Api(server.path) as api:
        api.request("PUT", "/machines/doomed", {"kernel": spin})
        api.request("PUT", "/machines/doomed/actions", {"action_type": "InstanceStart"})
        pid = api.request("GET", "/machines/doomed")["worker"]
        os.kill(pid, signal.SIGKILL)
        info = wait_for(api, "doomed", ("failed",))
        assert info["state"] == "failed" and "worker" in info["reason"], info
        assert pid not in api.request("GET", "/")["workers"]
        api.request("DELETE", "/machines/doomed")
        for i in range(4):  # (both workers, the new one included)
            console, info = run(api, f"after-{i}", {"kernel": HELLO})
            assert console == GREETING and info["exit_code"] == 0
            api.request("DELETE", f"/machines/after-{i}")


def rvemu(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rvemu", *args], capture_output=True, timeout=120, cwd=REPO
    )


def test_boot_through_the_server_exits_as_rvemu_boot(server: Server) -> None:
    r = rvemu("boot", "--api-sock", server.path, "build/unikernel/hello.elf")
    assert r.returncode == 0 and r.stdout == GREETING, r.stderr
    r = rvemu("boot", "--api-sock", server.path, "build/unikernel/crash.elf")
    local = rvemu("boot", "build/unikernel/crash.elf")
    assert r.returncode == local.returncode == 255 and r.stdout == local.stdout
    r = rvemu("boot", "--api-sock", server.path, HELLO, "--max-instructions", "50")
    assert r.returncode == 124 and b"instruction limit" in r.stderr
    r = rvemu("boot", "--api-sock", server.path, "/no/such.elf")
    assert r.returncode == 1 and r.stderr.count(b"\n") == 1 and b"no such file" in r.stderr
    r = rvemu("boot", "--api-sock", server.path + ".none", HELLO)
    assert r.returncode == 1 and b"cannot reach an rvemu server" in r.stderr
    r = rvemu("boot", "--api-sock", server.path, HELLO, "--gdb", "1234")
    assert r.returncode == 2 and b"--gdb cannot be used with --api-sock" in r.stderr
    with Api(server.path) as api:  # (each client deleted its machine)
        assert not [m for m in api.request("GET", "/machines") if m["id"].startswith("boot-")]


def test_a_socket_path_that_cannot_serve_is_a_one_line_error(server: Server) -> None:
    r = rvemu("serve", "--api-sock", server.path)
    assert (
        r.returncode == 1
        and r.stderr == f"rvemu: {server.path}: a server is already listening there\n".encode()
    )
    r = rvemu("serve", "--api-sock", "/no/such/folder/api.sock")
    assert r.returncode == 1 and r.stderr.count(b"\n") == 1 and b"No such file" in r.stderr


def test_the_client_loads_neither_numpy_nor_numba(server: Server) -> None:
    code = (
        "import sys; from rvemu.cli import main; status = main(sys.argv[1:]); "
        "assert 'numpy' not in sys.modules and 'numba' not in sys.modules, 'imported'; "
        "sys.exit(status)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, "boot", "--api-sock", server.path, HELLO],
        capture_output=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert r.returncode == 0 and r.stdout == GREETING, r.stderr


def readme_block(marker: str) -> str:
    """The README's ```sh block that holds `marker`."""
    text = (REPO / "README.md").read_text()
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        if marker in block:
            return block
    raise AssertionError(f"no sh block with {marker!r} in README.md")


@pytest.mark.parametrize("marker", ["rvemu serve --api-sock", "--save-at main"])
def test_readme_examples_run_as_written(marker: str, tmp_path: Path) -> None:
    """The README's sh examples of "Booting many unikernels quickly", run by bash with
    /tmp/ a temporary folder: each `# ...` line is output they must print, in order
    (`...`: anything)."""
    block = readme_block(marker)
    script = block.replace("/tmp/", f"{tmp_path}/").replace(
        ".venv/bin/rvemu", f"{sys.executable} -m rvemu"
    )
    r = subprocess.run(
        ["bash", "-c", "set -e\n" + script], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert r.returncode == 0, r.stderr
    expected = [line[2:] for line in block.splitlines() if line.startswith("# ")]
    lines = iter(r.stdout.replace("\r\n", "\n").splitlines())
    for want in expected:
        pattern = re.escape(want).replace(re.escape("..."), ".*")
        assert any(re.fullmatch(pattern, line) for line in lines), (want, r.stdout)
    assert not (tmp_path / "rvemu.sock").exists()  # (a server removes its socket at exit)
