"""Probes that watch the cluster and the workload while a disruption runs. They record, never judge.

    PodWatch        every pod of a workload through its deletion: when it was seen deleting,
                    its container's final state, termination message and Kubernetes events
                    (kubedrill/probe/termination.py)
    SlowStream      slow requests started continuously, so some are in flight on whichever pod
                    is terminated next (kubedrill/probe/inflight.py)
    termination_record   PodWatch evidence + probes -> kubedrill.check.shutdown.TerminationRecord
"""

from kubedrill.probe.inflight import SlowStream
from kubedrill.probe.termination import PodEvidence, PodWatch, termination_record

__all__ = ["PodEvidence", "PodWatch", "SlowStream", "termination_record"]
