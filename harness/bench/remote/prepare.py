"""Bench side, remote hosts: make a host ready for its role and read its facts.

`prepare(host, role, …) -> Prepared`. Every non-local host gets a copy of `apps/`,
`harness/` and `pyproject.toml` in its remote directory (uploaded as one tarball over
SFTP). A server host also gets a virtualenv made with its own `python3` and the pinned
server and framework packages (`pip install`, one server or app at a time: a package
that cannot be installed fails only its own cells, with pip's reason), unless
`--remote-venv` names an existing one, which is then used as it is. A client host needs
wrk (installed with apt-get when we are root or have passwordless sudo, else a clear
error). Then the agent's `facts` command reports the host's facts, versions and what
cannot run there.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import sys
import tarfile
import tempfile
import tomllib
from dataclasses import dataclass
from typing import Any

from harness.bench.host import HostError
from harness.bench.hostinfo import REPO_ROOT
from harness.bench.remote.hosts import Host, LocalHost

CODE = ("apps", "harness", "pyproject.toml")
# Proof that a remote directory is ours: we delete and replace its apps/ and harness/,
# so a directory we did not make (say, someone's checkout) is refused.
MARKER = ".wsgi-baseline-remote"
# meinheld pins a greenlet that does not build on Python >= 3.11 (see bootstrap.sh).
NO_DEPS = {"meinheld": "meinheld==1.0.2"}
SAMPLER_NEEDS = "psutil"  # harness/bench/sampler.py runs beside the server


@dataclass(frozen=True)
class Prepared:
    host: Host
    root: str  # where apps/ and harness/ are on that host
    python: str  # the interpreter the agent runs with (a server's: its virtualenv's)
    info: dict[str, Any]  # the agent's `facts` answer
    scratch: str  # where the agents put a cell's files until we fetch them


def on_host(p: Prepared, text: str) -> str:
    """A path into this checkout's apps/ or harness/ -> the same path in the host's copy.

    Only the uploaded parts are mapped: anything else (say, a --remote-venv that happens
    to live in this checkout) is a path on that host already.
    """
    for part in CODE[:2]:
        text = text.replace(f"{REPO_ROOT}/{part}", f"{p.root}/{part}")
    return text


def q(text: str) -> str:
    return shlex.quote(text)


def check(host: Host, command: str, what: str, timeout_s: float = 600.0) -> str:
    """Run `command`; HostError naming `what` and the last line it printed on failure."""
    code, out, err = host.run(command, timeout_s)
    if code != 0:
        last = (err.strip() or out.strip() or f"exit code {code}").splitlines()[-1]
        raise HostError(f"{host.spec}: {what} failed: {last}")
    return out


def code_tarball() -> bytes:
    """apps/, harness/ and pyproject.toml without caches: what a host needs to run."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in CODE:
            tar.add(
                REPO_ROOT / name,
                arcname=name,
                filter=lambda t: None if "__pycache__" in t.name or t.name.endswith(".pyc") else t,
            )
    return buf.getvalue()


def upload_code(host: Host, remote_dir: str) -> str:
    """Copy the code into `remote_dir` (made if missing, refused if not ours); its path."""
    listing = check(
        host,
        f"mkdir -p -- {q(remote_dir)} && cd -- {q(remote_dir)} && pwd && ls -A",
        f"creating {remote_dir}",
    ).splitlines()
    root, entries = listing[0].strip(), set(listing[1:])
    if entries and MARKER not in entries:
        raise HostError(
            f"{host.spec}: {root} is not empty and was not made by wsgi-baseline; "
            "choose another --remote-dir"
        )
    with tempfile.NamedTemporaryFile(suffix=".tar.gz") as tmp:
        tmp.write(code_tarball())
        tmp.flush()
        host.put(tmp.name, f"{root}/code.tar.gz")
    check(
        host,
        f"cd -- {q(root)} && touch {MARKER} && rm -rf apps harness && "
        "tar -xzf code.tar.gz && rm -f code.tar.gz",
        "unpacking the code",
    )
    return root


def pins() -> dict[str, str]:
    """Normalised distribution name -> pinned requirement, from pyproject.toml."""
    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    extras = project["optional-dependencies"]
    reqs = [*project["dependencies"], *(r for g in ("servers", "apps") for r in extras.get(g, []))]
    return {_norm(re.split(r"[=<>!~\[; ]", r, maxsplit=1)[0]): r for r in reqs}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def ensure_venv(host: Host, root: str, venv: str | None, pip_env: str = "") -> tuple[str, bool]:
    """The server's interpreter and whether it is ours to install into."""
    if venv:
        python = f"{venv.rstrip('/')}/bin/python"
        check(host, f"test -x {q(python)}", f"--remote-venv: {python} is not executable")
        return python, False
    venv = f"{root}/venv"
    make = f"test -x {q(venv)}/bin/python || python3 -m venv {q(venv)}"
    check(host, make, "creating a virtualenv with python3 (install python3-venv there)")
    check(host, f"{pip_env} {q(venv)}/bin/python -m pip install -q --upgrade pip", "upgrading pip")
    return f"{venv}/bin/python", True


def pip_install(host: Host, python: str, dists: list[str], pip_env: str = "") -> None:
    pinned = pins()
    plain = [pinned.get(_norm(d), d) for d in dists if d not in NO_DEPS]
    # uWSGI and bjoern compile: the host needs build-essential, python3-dev and libev-dev.
    pip = f"{pip_env} {q(python)} -m pip install -q --disable-pip-version-check"
    if plain:
        check(host, f"{pip} {' '.join(map(q, plain))}", f"pip install {' '.join(plain)}")
    for d in dists:
        if d in NO_DEPS:
            check(host, f"{pip} --no-deps {q(NO_DEPS[d])}", f"pip install {NO_DEPS[d]}")


def install_each(
    host: Host, python: str, info: dict[str, Any], needs: dict[str, list[str]], pip_env: str
) -> dict[str, str]:
    """Install what each unavailable server or app needs, one at a time, as a local run
    treats them: a package that cannot be installed makes only its own server's (or
    app's) cells fail; {id: why}. The sampler's psutil is the run's, tried first (if it
    fails, `prepare` stops the run: no cell could be sampled)."""
    if info["psutil"] is None:
        try:
            pip_install(host, python, [SAMPLER_NEEDS], pip_env)
        except HostError:
            pass  # prepare() says what is missing and how to install it
    failed: dict[str, str] = {}
    for what in sorted(info["unavailable"]):
        dists = needs.get(what, [])
        if not dists:
            continue
        try:
            pip_install(host, python, dists, pip_env)
        except HostError as e:
            failed[what] = f"could not be installed on the server host: {e}"
    return failed


def agent_shell(root: str, python: str, args: list[str]) -> str:
    """The shell command running one short-lived agent command on a host."""
    argv = " ".join(q(a) for a in [python, "-m", "harness.bench.remote.agent", *args])
    return f"cd -- {q(root)} && PYTHONPATH={q(root)} {argv}"


def facts(
    host: Host, root: str, python: str, servers: list[str], apps: list[str]
) -> dict[str, Any]:
    args = ["facts", "--servers", ",".join(servers), "--apps", ",".join(apps)]
    # The agent imports harness/, which needs Python 3.10; say so rather than a traceback.
    guard = f"{q(python)} -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {{ echo "
    guard += f"{q(python)}: Python 3.10 or newer is needed on this host; exit 1; }}"
    command = f"{guard} && {agent_shell(root, python, args)}"
    return dict(json.loads(check(host, command, "reading facts", 120)))


def ensure_wrk(host: Host, root: str, python: str) -> dict[str, Any]:
    """A client's facts; wrk is installed with apt-get if missing and we may."""
    info = facts(host, root, python, [], [])
    if info["wrk_path"] is None:
        sudo = "" if info.get("uid") == 0 else "sudo -n "
        code, _, _ = host.run(
            f"command -v apt-get >/dev/null && {sudo}apt-get update -qq && "
            f"DEBIAN_FRONTEND=noninteractive {sudo}apt-get install -y -qq wrk",
            600,
        )
        info = facts(host, root, python, [], []) if code == 0 else info
        if info["wrk_path"] is None:
            raise HostError(
                f"{host.spec}: wrk is not installed and cannot be installed from here "
                "(needs apt-get as root or passwordless sudo); install it: apt-get install wrk"
            )
    return info


def prepare(
    host: Host,
    role: str,
    remote_dir: str,
    remote_venv: str | None,
    servers: list[str],
    apps: list[str],
    needs: dict[str, list[str]],
    uploaded: str | None = None,
    pip_env: str = "",
) -> Prepared:
    """Ready `host` for `role` ("server" or "client"); `needs`: server/app id -> dists.

    `uploaded` is the code directory when the host already got the code in another role.
    """
    if isinstance(host, LocalHost):
        root, python = str(REPO_ROOT), sys.executable
        # Not under the repository: a cell's files live in scratch only until fetched.
        scratch = tempfile.mkdtemp(prefix="wsgi-baseline-agent-")
        if role == "client":
            return Prepared(host, root, python, ensure_wrk(host, root, python), scratch)
        return Prepared(host, root, python, facts(host, root, python, servers, apps), scratch)
    root = uploaded or upload_code(host, remote_dir)
    scratch = f"{root}/work"
    if role == "client":
        return Prepared(host, root, "python3", ensure_wrk(host, root, "python3"), scratch)
    python, ours = ensure_venv(host, root, remote_venv, pip_env)
    info = facts(host, root, python, servers, apps)
    if ours and (info["psutil"] is None or info["unavailable"]):
        failed = install_each(host, python, info, needs, pip_env)
        info = facts(host, root, python, servers, apps)
        info["unavailable"].update(failed)
    if info["psutil"] is None:
        raise HostError(
            f"{host.spec}: {python} has no psutil, which the per-cell sampling of the server "
            f"needs (harness/bench/sampler.py); install it there: pip install {pins()['psutil']}"
        )
    return Prepared(host, root, python, info, scratch)


def check_host(p: Prepared, cpus: tuple[int, ...] | None, nofile: int) -> None:
    """Refuse a host whose CPUs or open-files limit cannot serve the matrix."""
    facts = p.info["facts"]
    usable = set(facts.get("usable_cpus") or [])
    bad = [c for c in cpus or () if c not in usable]
    if bad:
        raise HostError(
            f"{p.host.spec}: CPU {bad[0]} is not usable there (usable: {sorted(usable)}); "
            "set --server-cpus/--client-cpus for that host"
        )
    hard = facts.get("nofile_hard")
    if hard is not None and hard != -1 and hard < nofile:
        raise HostError(
            f"{p.host.spec}: open-files hard limit {hard} is below the {nofile} "
            "descriptors the largest connection count needs"
        )
