"""Checking programs: run one on the kernel, step the model beside it, compare each step.

It orchestrates the layers below it (trace runs the program, observe reads
/proc, model predicts, oracle compares) and is what campaigns, `exec`, the
benchmarks and the reducers call.
"""

from fuzzer.check.program import Report, StepHook, StepReport, check, initial_state

__all__ = ["Report", "StepHook", "StepReport", "check", "initial_state"]
