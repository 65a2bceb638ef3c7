"""Supervision: starts executors and stops them around each step (ptrace), with injections."""

from fuzzer.prog.step import Step
from fuzzer.trace.supervisor import ChildCrash, Hang, Supervisor, SupervisorError

__all__ = ["ChildCrash", "Hang", "Step", "Supervisor", "SupervisorError"]
