"""The oracle: model prediction against kernel observation, and divergence titles (pure)."""

from fuzzer.oracle.compare import KINDS, compare, signal_text, value_text
from fuzzer.oracle.divergence import Divergence
from fuzzer.oracle.kind import PRECEDENCE, DivergenceKind
from fuzzer.oracle.primary import by_primary, primary_first
from fuzzer.oracle.title import call_feature
from fuzzer.oracle.views import kernel_view, model_view, render

__all__ = ["KINDS", "PRECEDENCE", "Divergence", "DivergenceKind", "by_primary", "call_feature",
           "compare", "kernel_view", "model_view", "primary_first", "render", "signal_text",
           "value_text"]
