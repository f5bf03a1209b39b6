"""Engine exec and file transfer speed (a benchmark, not a test). Run: ``python bench/bench_exec.py``.

Against one real engine (``dxflow boot up --daemon``, HTTPS with the certificate fingerprint pinned) on 127.0.0.1,
through the SDK the Ansible connection plugin uses (``ShellClient``, one keep-alive session, cached token):
1. exec round trip of ``true``: median and p95 of ``--execs`` sequential calls (target: median <= 15 ms);
2. ``--execs`` sequential execs of ``true`` vs the same number of ``ssh -o ControlPersist`` runs of ``true`` against
   a private sshd on 127.0.0.1 (target: >= 3x faster). Needs ``/usr/sbin/sshd``; ``--install-sshd`` runs
   ``apt-get install -y openssh-server`` first when it is missing (root only; never done in CI). Without sshd the
   comparison is reported as "not measured";
3. upload and download of a ``--size-mb`` MB file over loopback HTTPS (target: >= 150 MB/s each, MB = 10^6 bytes),
   both written atomically with fsync as in normal use.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))

from bench_engine import Engine, row  # noqa: E402

from dxflow.client.profiles import ProfileStore  # noqa: E402
from dxflow.client.session import Session  # noqa: E402
from dxflow.client.settings import resolve_settings  # noqa: E402
from dxflow.client.shell import ShellClient  # noqa: E402

SSHD = "/usr/sbin/sshd"


def shell_client(engine: Engine) -> ShellClient:
    store = ProfileStore(home=Path(tempfile.mkdtemp(prefix="bench-exec-", dir="/tmp")))
    values = {"connection-address": engine.address, "connection-key": str(engine.key)}
    if engine.fingerprint:
        values["connection-fingerprint"] = engine.fingerprint
    store.save("bench", values)
    return ShellClient(Session(resolve_settings(profile="bench", store=store, env={}), store))


def exec_round_trips(shell: ShellClient, count: int) -> list[float]:
    for _ in range(5):  # warm-up: login, connection, first spawn
        assert shell.exec(["true"]).rc == 0
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        result = shell.exec(["true"])
        times.append(time.perf_counter() - t0)
        assert result.rc == 0
    return times


class Sshd:
    """A private sshd on 127.0.0.1 (own host key, own authorized key, no PAM), and a ControlPersist client."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-sshd-", dir="/tmp"))
        for name in ("host", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.dir / name)], check=True)
        (self.dir / "authorized_keys").write_text((self.dir / "client.pub").read_text())
        self.port = free_port()
        config = self.dir / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.dir / 'host'}\n"
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}\nPidFile {self.dir / 'sshd.pid'}\n"
            "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        )
        Path("/run/sshd").mkdir(exist_ok=True)
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL)
        self.base = [
            "ssh",
            "-q",
            "-p",
            str(self.port),
            "-i",
            str(self.dir / "client"),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            f"UserKnownHostsFile={self.dir / 'known_hosts'}",
            "-o",
            "ControlMaster=auto",
            "-o",
            f"ControlPath={self.dir / 'cm-%C'}",
            "-o",
            "ControlPersist=60",
            f"{os.environ.get('USER', 'root')}@127.0.0.1",
        ]
        deadline = time.monotonic() + 10
        while subprocess.run([*self.base, "true"], capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("private sshd did not accept the bench key")
            time.sleep(0.1)

    def run_true(self, count: int) -> float:
        t0 = time.perf_counter()
        for _ in range(count):
            subprocess.run([*self.base, "true"], check=True)
        return time.perf_counter() - t0

    def stop(self) -> None:
        subprocess.run([*self.base[:-1], "-O", "exit", self.base[-1]], capture_output=True)
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_sshd(install: bool) -> str | None:
    """None when sshd is usable, else why not."""
    if Path(SSHD).exists():
        return None
    if not install:
        return "sshd not installed (pass --install-sshd to apt-get install openssh-server)"
    if os.geteuid() != 0:
        return "sshd not installed and not root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(["apt-get", "install", "-y", "-q", "openssh-server"], env=env, capture_output=True)
    return None if Path(SSHD).exists() else f"apt-get install openssh-server failed: {result.stderr[-200:]!r}"


def payload(work: Path, size_mb: int) -> Path:
    """``<work>/payload.bin``: ``size_mb`` MB (10^6 bytes) of random bytes."""
    src = work / "payload.bin"
    block = os.urandom(1024 * 1024)
    with open(src, "wb") as fh:
        for _ in range(size_mb * 1_000_000 // len(block)):
            fh.write(block)
        fh.write(block[: size_mb * 1_000_000 % len(block)])
    return src


def transfer(shell: ShellClient, size_mb: int, sync: bool = True) -> tuple[float, float]:
    """Seconds for one upload and one download of ``size_mb`` MB (atomic; fsynced unless ``sync`` is false)."""
    work = Path(tempfile.mkdtemp(prefix="bench-files-", dir="/tmp"))
    try:
        src = payload(work, size_mb)
        remote = work / "remote"
        remote.mkdir()
        shell.upload(work / "payload.bin", str(remote / "warm"))  # warm the page cache and the connection
        t0 = time.perf_counter()
        info = shell.upload(src, str(remote / "payload.bin"), sync=sync)
        up = time.perf_counter() - t0
        assert info["size"] == size_mb * 1_000_000
        t0 = time.perf_counter()
        size = shell.download(str(remote / "payload.bin"), work / "back.bin", sync=sync)
        down = time.perf_counter() - t0
        assert size == size_mb * 1_000_000
        return up, down
    finally:
        shutil.rmtree(work, ignore_errors=True)


def disk_rate(size_mb: int) -> float:
    """MB/s of ``dd conv=fsync`` into /tmp: what any durable write here is bound by."""
    target = Path(tempfile.mkdtemp(prefix="bench-dd-", dir="/tmp")) / "dd"
    t0 = time.perf_counter()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={size_mb}", "conv=fsync"],
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - t0
    shutil.rmtree(target.parent, ignore_errors=True)
    return size_mb * 1_048_576 / 1_000_000 / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execs", type=int, default=200, help="sequential execs (and ssh runs) to time")
    parser.add_argument("--size-mb", type=int, default=100, help="file size for upload/download, MB")
    parser.add_argument("--install-sshd", action="store_true", help="apt-get install openssh-server if missing")
    args = parser.parse_args()
    print(f"exec benchmark: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    rows = []
    with Engine() as engine:
        shell = shell_client(engine)
        times = exec_round_trips(shell, args.execs)
        median, p95 = statistics.median(times) * 1000, sorted(times)[int(len(times) * 0.95) - 1] * 1000
        total = sum(times)
        print(f"exec true x{args.execs}: median {median:.1f} ms, p95 {p95:.1f} ms, total {total:.2f} s")
        rows.append(
            row("exec round trip of `true` (median)", "<= 15 ms", f"{median:.1f} ms (p95 {p95:.1f})", median <= 15)
        )
        why_not = ensure_sshd(args.install_sshd)
        if why_not is None:
            sshd = Sshd()
            try:
                ssh_total = sshd.run_true(args.execs)
            finally:
                sshd.stop()
            ratio = ssh_total / total
            each = ssh_total / args.execs * 1000
            print(f"ssh ControlPersist true x{args.execs}: {ssh_total:.2f} s ({each:.1f} ms each)")
            rows.append(
                row(
                    f"{args.execs} execs vs {args.execs} `ssh localhost true` (ControlPersist)",
                    ">= 3x faster",
                    f"{total:.2f} s vs {ssh_total:.2f} s = {ratio:.1f}x",
                    ratio >= 3,
                )
            )
        else:
            print(f"ssh comparison not measured: {why_not}")
            rows.append(row(f"{args.execs} execs vs `ssh localhost true`", ">= 3x faster", "not measured", None))
        disk = disk_rate(args.size_mb)
        print(f"disk: {args.size_mb} MB written and fsynced by dd at {disk:.0f} MB/s")
        up_fast, down_fast = transfer(shell, args.size_mb, sync=False)
        print(
            f"without fsync (sync=False): upload {args.size_mb / up_fast:.0f} MB/s, "
            f"download {args.size_mb / down_fast:.0f} MB/s"
        )
        up, down = transfer(shell, args.size_mb)
        for label, secs in (("upload", up), ("download", down)):
            rate = args.size_mb / secs
            print(f"{label} {args.size_mb} MB: {secs:.2f} s = {rate:.0f} MB/s")
            rows.append(
                row(
                    f"{label} {args.size_mb} MB, loopback HTTPS, fsynced",
                    ">= 150 MB/s",
                    f"{rate:.0f} MB/s",
                    rate >= 150,
                )
            )
        shell.session.close()
    print("\n| metric | target | measured | |\n|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
