"""`kubedrill doctor`: check every prerequisite and say what is missing and how to get it.

Checks: Docker engine and privileged containers, disk space, cgroup mode, capability bounding
set, kind CLI, Kubernetes binaries / node images per pinned version (with their versions),
etcd image, sample app image, and whether a registry is reachable (upstream images usable).
Exit code 0 when everything needed for a kind run is present, 1 otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kubedrill.cluster.paths import cache_dir, k8s_bin, kind_binary, versions


@dataclass
class Check:
    name: str
    ok: bool
    seen: str
    fix: str = ""
    required: bool = True


def _run(argv: list[str], timeout: float = 20) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None


def check_docker() -> list[Check]:
    out = []
    if not shutil.which("docker"):
        return [Check("docker client", False, "not on PATH", "apt-get install docker.io (or install Docker >= 20.10)")]
    p = _run(["docker", "info", "--format", "{{.ServerVersion}} {{.CgroupVersion}} {{.DefaultRuntime}}"])
    if p is None or p.returncode != 0:
        return [Check("docker engine", False, (p.stderr.strip() if p else "no answer")[:200],
                      "run `bash clusters/engine/ensure-docker.sh` (installs/starts dockerd, configures the runtime wrapper)")]
    server, cgroup, runtime = (p.stdout.split() + ["?", "?", "?"])[:3]
    out.append(Check("docker engine", True, f"server {server}, cgroup v{cgroup}, default runtime {runtime}"))
    return out


def check_caps() -> Check:
    bnd = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            bnd = int(line.split()[1], 16)
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text().strip()) if Path("/proc/sys/kernel/cap_last_cap").exists() else 40
    missing = [i for i in range(last + 1) if not (bnd >> i) & 1]
    wrapper = Path("/usr/local/libexec/kubedrill-runc").exists()
    if not missing:
        return Check("capability bounding set", True, "complete")
    return Check("capability bounding set", wrapper,
                 f"lacks capability bit(s) {missing}; runtime wrapper {'installed' if wrapper else 'missing'}",
                 "run `bash clusters/engine/ensure-docker.sh` to install the kubedrill-runc wrapper (Docker < 23 only)")


def check_cgroup() -> Check:
    v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    mode = "v2" if v2 else "v1 (hybrid or legacy)"
    k8s = versions()["K8S_VERSION"]
    minor = int(k8s.split(".")[1])
    ok = v2 or minor <= 34
    return Check("cgroup mode", ok, f"{mode}; pinned Kubernetes {k8s}",
                 "Kubernetes >= 1.35 refuses cgroup v1 unless KubeletConfiguration failCgroupV1: false")


def check_disk(need_gb: int = 15) -> Check:
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(d).free / 2**30
    return Check("disk space", free >= need_gb, f"{free:.0f} GiB free under {d}",
                 f"a cold build needs ~{need_gb} GiB: free space or set KUBEDRILL_CACHE to a larger disk")


def check_tools() -> list[Check]:
    v = versions()
    out = []
    kb = kind_binary()
    out.append(Check("kind CLI", kb is not None, f"{kb}" if kb else "not built",
                     "python -m kubedrill build (builds kind from the Go module proxy)"))
    out.append(Check("go toolchain", shutil.which("go") is not None, shutil.which("go") or "missing",
                     "install Go >= 1.24 (needed only for offline builds)", required=False))
    for ver in (v["K8S_VERSION"], v["K8S_UPGRADE_FROM"]):
        kc = k8s_bin(ver, "kubectl")
        p = _run([str(kc), "version", "--client"]) if kc.exists() else None
        seen = (p.stdout.splitlines()[0] if p and p.stdout else "not built")
        out.append(Check(f"kubernetes {ver} binaries", kc.exists(), seen,
                         f"bash clusters/images/build-k8s-binaries.sh {ver}", required=ver == v["K8S_VERSION"]))
        p = _run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "kubedrill/node"])
        tags = [t for t in (p.stdout.split() if p else []) if t.startswith(f"kubedrill/node:{ver}-")]
        up = _run(["docker", "image", "inspect", f"kindest/node:{ver}"])
        have = bool(tags) or (up is not None and up.returncode == 0)
        out.append(Check(f"node image {ver}", have, ", ".join(tags) or ("kindest/node:" + ver if have else "missing"),
                         f"bash clusters/images/build-node-image.sh {ver} (cold: ~15-25 min)", required=ver == v["K8S_VERSION"]))
    etcd = _run(["docker", "image", "inspect", f"kubedrill/etcd:{v['ETCD_VERSION']}"])
    out.append(Check(f"etcd image {v['ETCD_VERSION']}", bool(etcd and etcd.returncode == 0),
                     "present" if etcd and etcd.returncode == 0 else "missing",
                     f"bash clusters/images/build-etcd.sh {v['ETCD_VERSION']}"))
    app = _run(["docker", "images", "-q", "kubedrill/sample-app"])
    out.append(Check("sample app image", bool(app and app.stdout.strip()), "present" if app and app.stdout.strip() else "missing",
                     "bash clusters/images/build-sample-app.sh", required=False))
    return out


def check_registry() -> Check:
    p = _run(["docker", "pull", "registry.k8s.io/pause:3.10"], timeout=30)
    ok = p is not None and p.returncode == 0
    return Check("container registry", True, "reachable: upstream kindest/node images can be used" if ok else
                 "not reachable: kubedrill builds and uses its offline node image", required=False)


def run_checks(registry: bool = True) -> list[Check]:
    checks = check_docker()
    checks += [check_caps(), check_cgroup(), check_disk()]
    if checks[0].ok:
        checks += check_tools()
        if registry:
            checks.append(check_registry())
    return checks


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="kubedrill doctor", description=__doc__)
    ap.add_argument("--no-registry", action="store_true", help="skip the registry reachability probe")
    args = ap.parse_args(argv)
    checks = run_checks(registry=not args.no_registry)
    width = max(len(c.name) for c in checks)
    bad = 0
    for c in checks:
        mark = "ok  " if c.ok else ("MISS" if c.required else "warn")
        print(f"[{mark}] {c.name:<{width}}  {c.seen}")
        if not c.ok and c.fix:
            print(f"       {'':<{width}}  fix: {c.fix}")
        bad += (not c.ok) and c.required
    print(f"\n{'everything needed is present' if not bad else f'{bad} required item(s) missing'}"
          f" (cache {cache_dir()}, KUBEDRILL_CACHE={os.environ.get('KUBEDRILL_CACHE', 'unset')})")
    return 1 if bad else 0
