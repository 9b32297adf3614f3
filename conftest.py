"""kubedrill's root conftest: load the plugin and the fixtures; nothing else lives here.

Pipeline: cluster -> workload -> load -> disruption -> check -> report.
fixtures/ wires the engine (kubedrill/) into tests and owns lifetimes; suites/ only orchestrate.
"""

pytest_plugins = [
    "kubedrill.pytest_plugin",
    "fixtures.cluster",
    "fixtures.workload",
    "fixtures.etcd",
    "fixtures.node_loss",
]
