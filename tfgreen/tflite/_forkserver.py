"""A warm process that forks one clean child per `IsolatedRunner`.

Starting a fresh Python with numpy and LiteRT costs about 0.3 s; forking a
process that already imported them costs a few milliseconds. So the first
`IsolatedRunner` of a caller starts one server
(`python -m tfgreen.tflite._forkserver FD`) which imports numpy, LiteRT and
`tfgreen.tflite.runner` and then never loads a model: every child is forked
from that clean image, so what one hostile file does to a child's memory
cannot reach another file's run. (The caller itself can't fork: it may hold
TensorFlow's threads.)

Protocol, on a Unix `SOCK_SEQPACKET` socket pair (one message per request):

- `spawn` with two file descriptors (SCM_RIGHTS): a socket the child will
  serve `tfgreen.tflite.isolated.serve` on, and the caller's current
  stderr, which becomes the child's fd 1 and 2 (progress bars and LiteRT's
  log lines go where the caller's stderr goes now). Answer: the child's pid.
- `wait PID SECONDS`: waits up to SECONDS for that child to end (then kills
  it with SIGKILL); answer: its exit code, negative for a signal (as
  `subprocess` reports it).
- `kill PID`: SIGKILL, only if the pid is a live child of the server (no
  pid reuse races). Answer: `ok`.
- `free PID`: the caller closed that child normally and needs no exit
  code; the server reaps it without keeping one. Answer: `ok`.

When the caller goes away (its end closes), the server kills the children
it still has and exits. SIGINT is ignored by the server and its children:
Ctrl-C belongs to the caller, which closes its runners.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

__all__ = ["spawn", "wait", "kill", "free", "main"]

_ROOT = Path(__file__).resolve().parents[2]
_LOCK = threading.Lock()
_STATE: dict = {}  # "pid" of the caller that started it, "sock", "process"


def _server() -> socket.socket:
    """The caller's control socket, starting the server on first use (or after a fork)."""
    if _STATE.get("pid") == os.getpid() and _STATE["process"].poll() is None:
        return _STATE["sock"]
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH")) if p)
    process = subprocess.Popen(
        [sys.executable, "-m", "tfgreen.tflite._forkserver", str(theirs.fileno())],
        pass_fds=(theirs.fileno(),),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    theirs.close()
    old = _STATE.get("sock")
    if old is not None and _STATE.get("pid") == os.getpid():
        old.close()
    _STATE.update(pid=os.getpid(), sock=ours, process=process)
    return ours


def _ask(message: bytes, fds: list[int] | None = None) -> bytes:
    with _LOCK:
        for attempt in (0, 1):
            sock = _server()
            try:
                if fds:
                    socket.send_fds(sock, [message], fds)
                else:
                    sock.send(message)
                answer = sock.recv(64)
                if answer:
                    return answer
            except OSError:
                if attempt:
                    raise
            _STATE["process"].kill()  # a server that died or hung: start a new one once
            _STATE["process"].wait()
        raise ConnectionError("the tfgreen fork server closed its socket")


def spawn(child: socket.socket) -> int:
    """Forks a child that serves on `child` (a socket); returns its pid."""
    return struct.unpack("<q", _ask(b"spawn", [child.fileno(), 2]))[0]


def wait(pid: int, seconds: float = 5.0) -> int:
    """How a child ended: exit code, or minus the signal; killed after `seconds`."""
    return struct.unpack("<q", _ask(b"wait" + struct.pack("<qd", pid, seconds)))[0]


def kill(pid: int) -> None:
    """Kills a live child of the server (SIGKILL)."""
    _ask(b"kill" + struct.pack("<q", pid))


def free(pid: int) -> None:
    """Lets the server reap a child closed normally, without waiting for it."""
    _ask(b"free" + struct.pack("<q", pid))


def _child(sock: socket.socket, stream: socket.socket, log: int) -> None:
    from tfgreen.tflite.isolated import serve

    code = 1
    try:
        sock.close()
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        code = serve(stream, stream)
    finally:
        os._exit(code)


def _reap(live: set[int], ended: dict[int, int], freed: set[int]) -> None:
    for pid in list(live):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            live.discard(pid)
            if pid in freed:
                freed.discard(pid)
            else:
                ended[pid] = os.waitstatus_to_exitcode(status)


def _wait(pid: int, seconds: float, live: set[int], ended: dict[int, int]) -> int:
    deadline = time.monotonic() + seconds
    while pid in live and time.monotonic() < deadline:
        _reap(live, ended, set())
        time.sleep(0.002)
    if pid in live:
        os.kill(pid, signal.SIGKILL)
        live.discard(pid)
        ended[pid] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return ended.pop(pid, -signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    """The server's loop (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=int(argv[0]))
    import ai_edge_litert.interpreter  # noqa: F401 - warm the image every child forks from

    import tfgreen.tflite.isolated  # noqa: F401
    import tfgreen.tflite.runner  # noqa: F401

    live: set[int] = set()
    ended: dict[int, int] = {}
    freed: set[int] = set()
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, 64, 2)
        except OSError:
            break
        if not message:
            break
        _reap(live, ended, freed)
        if message == b"spawn" and len(fds) == 2:
            stream = socket.socket(fileno=fds[0])
            pid = os.fork()
            if pid == 0:
                _child(sock, stream, fds[1])
            stream.close()
            os.close(fds[1])
            live.add(pid)
            sock.send(struct.pack("<q", pid))
        elif message.startswith(b"wait"):
            pid, seconds = struct.unpack("<qd", message[4:])
            sock.send(struct.pack("<q", _wait(pid, seconds, live, ended)))
        elif message.startswith(b"free"):
            (pid,) = struct.unpack("<q", message[4:])
            if pid in live:
                freed.add(pid)
            ended.pop(pid, None)
            sock.send(b"ok")
        elif message.startswith(b"kill"):
            (pid,) = struct.unpack("<q", message[4:])
            if pid in live:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            sock.send(b"ok")
        else:
            for fd in fds:
                os.close(fd)
            sock.send(b"?")
    for pid in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
