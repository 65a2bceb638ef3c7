"""Supervision: starts executors, stops them around each step, checks programs against the model."""

from fuzzer.trace.checker import Report, StepReport, check
from fuzzer.trace.supervisor import ChildCrash, Hang, Step, Supervisor, SupervisorError

__all__ = [
    "ChildCrash",
    "Hang",
    "Report",
    "Step",
    "StepReport",
    "Supervisor",
    "SupervisorError",
    "check",
]
