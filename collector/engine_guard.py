"""The engine's guard: a tiny process between the collector and an engine it starts, which tears the engine down.

It starts the engine (a local process group, or a container through `docker run -d`), reports on stdout, and
stops exactly what it started when its standard input closes: the collector holds the other end of that pipe,
so a collector that ends in any way, kill -9 included, takes its engine with it.

    python -m collector.engine_guard process --log FILE -- CMD ...
    python -m collector.engine_guard container --log FILE -- DOCKER run -d ...

Lines on stdout: `started <pid or container id>`, `failed <exit code> <last error line>`, `exited <code>`,
`stopped <pid>` / `removed <container id>`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

GRACE_S = 10.0


def say(line: str) -> None:
    sys.stdout.write(line.replace("\n", " ") + "\n")
    sys.stdout.flush()


def watch_stdin(closed: threading.Event) -> None:
    with contextlib.suppress(OSError, ValueError):
        while os.read(sys.stdin.fileno(), 4096):
            pass
    closed.set()


def stop_group(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the engine's process group, then SIGKILL whatever is left of it after `grace_s`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # also any child that outlived the leader
    proc.wait()


def run_process(cmd: list[str], log: Path, closed: threading.Event, grace_s: float) -> int:
    with log.open("ab") as out:
        try:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)  # fmt: skip
        except OSError as exc:
            say(f"failed 127 cannot start {cmd[0]}: {exc.strerror or exc}")
            return 2
    say(f"started {proc.pid}")
    while not closed.wait(0.1):
        code = proc.poll()
        if code is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # children the engine left behind
            say(f"exited {code}")
            return 3
    stop_group(proc, grace_s)
    say(f"stopped {proc.pid}")
    return 0


def run_container(cmd: list[str], log: Path, closed: threading.Event, grace_s: float) -> int:
    docker = cmd[0]
    with log.open("ab") as out:
        done = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL)
        out.write(done.stderr)
    lines = done.stdout.decode(errors="replace").split()
    if done.returncode != 0 or not lines:
        err = [ln for ln in done.stderr.decode(errors="replace").splitlines() if ln.strip()]
        say(f"failed {done.returncode} {err[-1] if err else 'docker run printed no container id'}")
        return 2
    cid = lines[-1]
    say(f"started {cid}")
    with log.open("ab") as out:
        logs = subprocess.Popen([docker, "logs", "-f", cid], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    code = 0
    while not closed.wait(0.2):
        if logs.poll() is not None:  # `docker logs -f` ends when the container stops
            state = subprocess.run([docker, "inspect", "--format", "{{.State.ExitCode}}", cid],
                                   capture_output=True, text=True)  # fmt: skip
            say(f"exited {state.stdout.strip() or '?'}")
            code = 3
            break
    if code == 0:
        subprocess.run([docker, "stop", "-t", str(int(grace_s)), cid], capture_output=True)
    subprocess.run([docker, "rm", "-f", cid], capture_output=True)
    with contextlib.suppress(subprocess.TimeoutExpired):
        logs.wait(5)
    if logs.poll() is None:
        logs.kill()
    say(f"removed {cid}")
    return code


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m collector.engine_guard")
    parser.add_argument("mode", choices=["process", "container"])
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--grace-s", type=float, default=GRACE_S)
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    cmd = argv[split + 1 :]
    if not cmd:
        parser.error("give the command after --")
    closed = threading.Event()
    # Ctrl-C and a closing terminal are the collector's to handle: it closes our stdin when it wants us to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: closed.set())
    threading.Thread(target=watch_stdin, args=(closed,), daemon=True).start()
    run = run_process if args.mode == "process" else run_container
    return run(cmd, args.log, closed, args.grace_s)


if __name__ == "__main__":
    sys.exit(main())
