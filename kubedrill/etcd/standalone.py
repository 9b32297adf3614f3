"""A run outside pytest (benchmarks, ad-hoc drills): image, work dir, CA, client cert, cleanup.

    with standalone_run() as run:
        with run.cluster(3) as c:
            ...

Everything created is labelled with the run id and swept when the block exits, however it exits.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from kubedrill.etcd.cluster import EtcdCluster, sweep
from kubedrill.etcd.image import ensure_image
from kubedrill.etcd.tls import CertAuthority, ClientTLS


@dataclass
class StandaloneRun:
    run_id: str
    workdir: Path
    image: str
    ca: CertAuthority
    tls: ClientTLS

    def cluster(self, size: int, name: str | None = None, **kw: Any) -> EtcdCluster:
        """An unstarted cluster; use it as a context manager to start it and always remove it."""
        return EtcdCluster(size=size, image=self.image, ca=self.ca, client_tls=self.tls, workdir=self.workdir,
                           run_id=self.run_id, name=name or f"c{size}-{uuid.uuid4().hex[:4]}", **kw)


@contextmanager
def standalone_run(version: str | None = None, workdir: Path | None = None) -> Iterator[StandaloneRun]:
    image = ensure_image(version)
    run_id = uuid.uuid4().hex[:8]
    wd = workdir or Path(tempfile.mkdtemp(prefix=f"kubedrill-etcd-{run_id}-"))
    wd.mkdir(parents=True, exist_ok=True)
    ca = CertAuthority.create(wd / "pki" / "ca")
    tls = ClientTLS(ca.ca_cert, ca.issue_client(wd / "pki" / "client", "client", "kube-apiserver-etcd-client"))
    try:
        yield StandaloneRun(run_id, wd, image, ca, tls)
    finally:
        sweep(run_id=run_id)
        shutil.rmtree(wd, ignore_errors=True)
