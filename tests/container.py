"""Building and running the project's container image in tests, with podman.

`missing()` says why no container can run here (no podman, no way to get a
base image), or None. `base_image()` returns a Debian bookworm base image,
made with debootstrap and imported when no registry can be reached (none can
on these machines). `build()` runs docker/build. `run()` runs the image with
the capabilities a fuzzing worker needs; every step has a time budget, and a
container that overruns is removed by its name.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = "localhost/debian:bookworm-slim"
IMAGE = "localhost/mmfuzz:test"
# What works where root lacks CAP_SYS_RESOURCE and cgroups are in hybrid mode:
# runc (crun fails to set rlimits there), cgroupfs, and explicit low rlimits.
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]
# ptrace the executor, lock memory, read pagemap's PFNs; seccomp off for ptrace
# options and pkey calls that runtimes' default profiles refuse.
WORKER_FLAGS = ["--cap-add", "SYS_PTRACE", "--cap-add", "IPC_LOCK", "--cap-add", "SYS_ADMIN",
                "--security-opt", "seccomp=unconfined",
                "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def missing() -> str | None:
    """Why no container can be built and run here, or None."""
    if shutil.which("podman") is None or shutil.which("runc") is None:
        return "no container runtime (apt-get install podman runc debootstrap; .ci/run does)"
    if not _has_image(BASE) and shutil.which("debootstrap") is None:
        return f"no {BASE} image and no debootstrap to make one (apt-get install debootstrap)"
    return None


def _has_image(name: str) -> bool:
    return subprocess.run([*PODMAN, "image", "exists", name], timeout=60).returncode == 0


def base_image() -> str:
    """A Debian bookworm base image: kept in podman's store once made (about 3 min)."""
    if _has_image(BASE):
        return BASE
    with tempfile.TemporaryDirectory(prefix="mmfuzz-rootfs-") as root:
        subprocess.run(["debootstrap", "--variant=minbase", "bookworm", root,
                        "http://deb.debian.org/debian"], check=True, timeout=900,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run([*PODMAN, "import", "-", BASE], stdin=tar.stdout, check=True,
                       timeout=600, stdout=subprocess.DEVNULL)
        tar.wait(timeout=60)
    return BASE


def build(base: str, tag: str = IMAGE) -> None:
    """docker/build with this interpreter's pip (so its wheels match the tests')."""
    env = {**os.environ, "ENGINE": "podman", "BASE": base, "PYTHON": sys.executable}
    done = subprocess.run([str(ROOT / "docker" / "build"), tag], cwd=ROOT, env=env,
                          timeout=1200, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"docker/build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def run(args: list[str], *, volumes: dict[Path, str], budget: float,
        image: str = IMAGE) -> subprocess.CompletedProcess[str]:
    """`podman run` of the image with a worker's capabilities; the host's network,
    so a database server on 127.0.0.1 is reachable."""
    name = f"mmfuzz-test-{os.getpid()}"
    mounts = [f"--volume={host}:{inside}" for host, inside in volumes.items()]
    try:
        return subprocess.run([*PODMAN, "run", "--rm", "--name", name, "--network", "host",
                               *WORKER_FLAGS, *mounts, image, *args],
                              timeout=budget, capture_output=True, text=True)
    finally:
        subprocess.run([*PODMAN, "rm", "--force", "--ignore", name], timeout=60,
                       capture_output=True)
