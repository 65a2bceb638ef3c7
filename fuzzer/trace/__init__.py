"""Supervision: starts executors and stops them around each step (ptrace), with injections."""

from fuzzer.trace.supervisor import ChildCrash, Hang, Step, Supervisor, SupervisorError

__all__ = ["ChildCrash", "Hang", "Step", "Supervisor", "SupervisorError"]
