"""The typed values the Store takes in: where a sample was seen, and operation counts.

A divergence is recorded as the oracle's Divergence plus a SampleContext (the
program, the campaign, the kernel release, its probed features and the
injections active); a campaign's progress carries OpCount rows. Both cross
JSON (the guest's store proxy, fuzzer/kernel/proxy.py) through to_json and
from_json, which check what arrives.

Injections are a tuple of names here and everywhere the Store hands them out;
the sample table keeps them as one comma-separated column (models.Sample), and
injections_column / injection_names are the only translation between the two.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class OpCount:
    """How many checked steps exercised one thing (models.OpCount says what)."""

    call: str
    what: str  # "steps", an argument's name, or "outcome"
    value: str
    count: int

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"an operation count is [call, what, value, count], not {self!r}")

    def to_json(self) -> list[str | int]:
        return [self.call, self.what, self.value, self.count]

    @classmethod
    def from_json(cls, item: object) -> OpCount:
        """[call, what, value, count] as JSON gives it back; anything else is a ValueError."""
        if isinstance(item, (list, tuple)) and len(item) == 4:
            call, what, value, n = item
            if (isinstance(call, str) and isinstance(what, str) and isinstance(value, str)
                    and isinstance(n, int) and not isinstance(n, bool)):
                return cls(call, what, value, n)
        raise ValueError(f"an operation count is [call, what, value, count], not {item!r}")


@dataclass(frozen=True)
class SampleContext:
    """Where a divergence was seen: the program, campaign, kernel and injections.

    features is the kernel's probed features (Features.as_dict()), None when
    not probed; injections names the injections active, () on a real kernel;
    build is the kernel's `uname -v` (None: not known); symptoms are the titles
    of the other divergences of the same step, filed under this one
    (fuzzer.oracle.primary).
    """

    campaign_id: int | None
    program_text: str
    program_hash: str
    kernel: str
    injections: tuple[str, ...] = ()
    features: dict[str, object] | None = None
    build: str | None = None
    symptoms: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"campaign_id": self.campaign_id, "program_text": self.program_text,
                "program_hash": self.program_hash, "kernel": self.kernel,
                "injections": list(self.injections), "features": self.features,
                "build": self.build, "symptoms": list(self.symptoms)}

    @classmethod
    def from_json(cls, data: object) -> SampleContext:
        """What to_json made, after a trip through JSON; anything else is a ValueError."""
        if not isinstance(data, dict):
            raise ValueError(f"a sample's context is a JSON object, not {data!r}")
        campaign_id, features = data.get("campaign_id"), data.get("features")
        injections, symptoms = data.get("injections", []), data.get("symptoms", [])
        build = data.get("build")
        texts = [data.get(k) for k in ("program_text", "program_hash", "kernel")]
        if (not (campaign_id is None or isinstance(campaign_id, int))
                or not (features is None or isinstance(features, dict))
                or not (build is None or isinstance(build, str))
                or not isinstance(injections, list) or not isinstance(symptoms, list)
                or not all(isinstance(x, str) for x in [*texts, *injections, *symptoms])):
            raise ValueError(f"malformed sample context: {data!r}")
        text, digest, kernel = (str(x) for x in texts)
        return cls(campaign_id, text, digest, kernel,
                   tuple(str(x) for x in injections), features, build,
                   tuple(str(x) for x in symptoms))


def injections_column(names: Iterable[str]) -> str:
    """Injection names as the sample table stores them: comma-separated, "" for none
    (blanks dropped; a name with a comma in it reads back as several)."""
    parts = (part.strip() for name in names for part in name.split(","))
    return ",".join(part for part in parts if part)


def injection_names(column: str) -> tuple[str, ...]:
    """The names a sample's injections column holds (() for "")."""
    return tuple(n for n in column.split(",") if n)
