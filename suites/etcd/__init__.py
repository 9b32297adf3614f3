"""etcd suites: quorum, partitions, process faults, snapshot/restore, TLS, cleanup (issue 3)."""
