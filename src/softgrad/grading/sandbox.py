"""Run a student's Jupyter kernel in a sandbox.

The grader never runs student code unconfined. Each kernel is started through a kernelspec
(:func:`write_kernelspec`) whose argv is ``python -m softgrad.grading.sandbox {connection_file}``.
This launcher reads its policy from the environment variable ``SOFTGRAD_SANDBOX`` (JSON, see
:class:`Policy`) and replaces itself with::

    prlimit --as=MEM --fsize=F --cpu=S --nproc=N --core=0 --
      bwrap --cap-drop ALL --unshare-net --unshare-pid --unshare-ipc --unshare-uts
            --new-session --die-with-parent
            --size 128M --tmpfs /  (then read-only binds of /usr, /etc, the Python prefix and the softgrad package)
            --tmpfs <every hidden path that a bind would otherwise expose>
            --bind <runtime dir> --bind <the notebook's own directory>  (the only writable places)
      python -m ipykernel_launcher -f CONNECTION_FILE

So the kernel has no capabilities (run as root, bwrap keeps them unless told: ``--cap-drop
ALL``), no network (an empty network namespace; the kernel talks to the grader over ZeroMQ
``ipc`` sockets, which are files in the runtime dir), an address-space cap (a 4 GB allocation
raises ``MemoryError``), a CPU-time cap, and a filesystem view in which the gradebook, the
course's ``source/`` (solutions, hidden tests), the output dir and the other submissions do not
exist. Nothing is chowned: the two writable dirs are the grader's own. When the grader is not
root, bwrap runs unprivileged in a user namespace instead (``--unshare-user``). ``--nproc`` is
not enforced for uid 0, so a root grader caps the kernel's tasks with a pids cgroup
(:func:`make_pids_cgroup`), which the launcher joins before it execs; removing the cgroup at
the end kills anything the kernel left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

KERNEL_NAME = "softgrad-sandbox"
ENV_VAR = "SOFTGRAD_SANDBOX"

# Directories of the host a Python kernel needs; merged-/usr systems have symlinks for the rest.
_SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


@dataclass
class Policy:
    """What the sandbox allows. Sizes in bytes, CPU time in seconds."""

    memory: int = 2 * 1024**3
    cpu: int = 600
    nproc: int = 256
    fsize: int = 256 * 1024**2
    hide: list[str] = field(default_factory=list)
    tmpfs: int = 128 * 1024**2
    # a pids cgroup made by the grader (see :func:`make_pids_cgroup`), joined before the exec
    cgroup: str = ""

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, environ=os.environ) -> Policy:
        raw = environ.get(ENV_VAR)
        if raw is None:
            raise RuntimeError(f"{ENV_VAR} is not set: the sandbox launcher needs a policy")
        return cls(**json.loads(raw))


def _python_roots() -> list[str]:
    """Read-only directories the kernel's Python needs: prefixes and the softgrad package."""
    import softgrad

    package_root = Path(softgrad.__file__).resolve().parent.parent
    roots = {
        sys.prefix,
        sys.base_prefix,
        str(package_root),
        str(Path(sys.executable).resolve().parent.parent),
    }
    return sorted({str(Path(r).resolve()) for r in roots} | roots)


def _ancestors(path: str) -> list[str]:
    parts = Path(path).parts
    return [str(Path(*parts[:i])) for i in range(2, len(parts))]


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def bwrap_args(policy: Policy, writable: list[str], *, as_root: bool) -> list[str]:
    """The bwrap command line (without the command to run inside).

    Examples
    --------
    >>> args = bwrap_args(Policy(), ["/srv/work/k1"], as_root=True)
    >>> args[:3], "--unshare-net" in args, args[-3:]
    (['bwrap', '--cap-drop', 'ALL'], True, ['--bind', '/srv/work/k1', '/srv/work/k1'])
    """
    args = [
        "bwrap",
        "--cap-drop",
        "ALL",
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--new-session",
        "--die-with-parent",
        "--hostname",
        "sandbox",
    ]
    if not as_root:
        args += ["--unshare-user"]
    args += ["--size", str(policy.tmpfs), "--tmpfs", "/"]
    made: set[str] = set()

    def mkdirs(path: str) -> None:
        # parents bwrap creates itself get mode 0700; make them plainly traversable
        for parent in _ancestors(path):
            if parent not in made:
                made.add(parent)
                args.extend(["--perms", "0755", "--dir", parent])

    for d in _SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    for secret in ("/etc/shadow", "/etc/gshadow", "/etc/sudoers"):
        if os.path.isfile(secret):
            args += ["--ro-bind", "/dev/null", secret]
    # the private /tmp comes before the Python binds: a checkout (and its .venv) under /tmp
    # must be bound on top of it, not hidden by it
    args += ["--dev", "/dev", "--proc", "/proc", "--size", str(policy.tmpfs), "--tmpfs", "/tmp"]
    bound = [d for d in _SYSTEM_DIRS if os.path.isdir(d) and not os.path.islink(d)]
    for root in _python_roots():
        if os.path.isdir(root) and not any(_under(root, b) for b in bound):
            mkdirs(root)
            args += ["--ro-bind", root, root]
            bound.append(root)
    for hidden in sorted({str(Path(h).resolve()) for h in policy.hide}):
        if any(_under(hidden, b) for b in bound) and os.path.isdir(hidden):
            args += ["--tmpfs", hidden]
    for w in writable:
        mkdirs(w)
        args += ["--bind", w, w]
    return args


def command(policy: Policy, inner: list[str], writable: list[str], cwd: str) -> list[str]:
    """Full argv: prlimit, then bwrap, then ``inner``."""
    limits = [
        f"--as={policy.memory}",
        f"--fsize={policy.fsize}",
        f"--cpu={policy.cpu}",
        f"--nproc={policy.nproc}",
        "--core=0",
    ]
    env = {
        "HOME": "/tmp/home",
        "IPYTHONDIR": "/tmp/ipython",
        "MPLCONFIGDIR": "/tmp/mpl",
        "MPLBACKEND": "Agg",
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "LANG": "C.UTF-8",
        # one BLAS thread: the grader runs several kernels on few cores, and each thread's
        # arena would count against the address-space cap
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "SOFTGRAD_NUM_THREADS": "1",
        "MALLOC_ARENA_MAX": "2",
    }
    argv = [
        "prlimit",
        *limits,
        "--",
        *bwrap_args(policy, writable, as_root=os.geteuid() == 0),
        "--chdir",
        cwd,
        "--clearenv",
    ]
    for k, v in env.items():
        argv += ["--setenv", k, v]
    return argv + ["--", *inner]


def missing_tools() -> list[str]:
    """Names of the host programs the sandbox needs that are not installed."""
    return [t for t in ("prlimit", "bwrap") if shutil.which(t) is None]


def self_test(tmpdir: str) -> str | None:
    """Start a trivial sandboxed Python in ``tmpdir``; None if it works, else the error text."""
    missing = missing_tools()
    if missing:
        return "missing " + ", ".join(missing) + " (Debian: apt-get install bubblewrap util-linux)"
    probe = (
        "import softgrad, numpy; "
        "caps = [l for l in open('/proc/self/status') if l.startswith('CapEff')]; "
        "assert caps[0].split()[1].strip('0') == '', caps"
    )
    argv = command(Policy(), [sys.executable, "-c", probe], [tmpdir], tmpdir)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        return proc.stderr.strip()[-2000:] or f"exit status {proc.returncode}"
    return None


def make_pids_cgroup(name: str, max_pids: int) -> str:
    """Make a pids cgroup ``name`` capped at ``max_pids`` tasks; return its path, or "".

    RLIMIT_NPROC is not enforced for uid 0, so a root grader caps the kernel's processes and
    threads (a fork bomb) with a cgroup instead. Only as root, and only where a pids hierarchy
    is mounted writable (cgroup v1 ``/sys/fs/cgroup/pids``, or v2 with ``pids`` enabled).
    """
    if os.geteuid() != 0:
        return ""
    for base in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup"):
        control = os.path.join(base, "cgroup.subtree_control")
        if not os.path.isfile(os.path.join(base, "cgroup.procs")):
            continue
        if not base.endswith("pids"):
            try:
                with open(control) as f:
                    if "pids" not in f.read().split():
                        continue
            except OSError:
                continue
        path = os.path.join(base, name)
        try:
            os.mkdir(path)
        except OSError:
            continue
        try:
            with open(os.path.join(path, "pids.max"), "w") as f:
                f.write(str(max_pids))
        except OSError:
            remove_cgroup(path)
            continue
        return path
    return ""


def remove_cgroup(path: str) -> None:
    """Kill whatever is left in the cgroup ``path`` (made by :func:`make_pids_cgroup`), remove it."""
    import signal
    import time

    if not path:
        return
    for _ in range(50):
        try:
            with open(os.path.join(path, "cgroup.procs")) as f:
                pids = [int(p) for p in f.read().split()]
        except OSError:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.rmdir(path)
            return
        except OSError:
            time.sleep(0.1)


def write_kernelspec(jupyter_path: Path) -> Path:
    """Write the sandbox kernelspec under ``jupyter_path/kernels``; return its directory."""
    spec_dir = jupyter_path / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "softgrad.grading.sandbox", "{connection_file}"],
        "display_name": "Python 3 (softgrad grading sandbox)",
        "language": "python",
        # signals would hit prlimit/bwrap, not the kernel (it runs in its own session)
        "interrupt_mode": "message",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return spec_dir


def main(argv: list[str]) -> None:
    """Kernel launcher: ``python -m softgrad.grading.sandbox CONNECTION_FILE [kernel args]``."""
    if not argv:
        raise SystemExit("usage: python -m softgrad.grading.sandbox CONNECTION_FILE [ARGS...]")
    policy = Policy.from_env()
    connection_file = os.path.abspath(argv[0])
    runtime_dir = os.path.dirname(connection_file)
    cwd = os.getcwd()
    inner = [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file, *argv[1:]]
    if policy.cgroup:  # fail closed: no kernel outside its process cap
        with open(os.path.join(policy.cgroup, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    argv_full = command(policy, inner, sorted({runtime_dir, cwd}), cwd)
    sys.stdout.flush()
    os.execvp(argv_full[0], argv_full)


if __name__ == "__main__":
    main(sys.argv[1:])
