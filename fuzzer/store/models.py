"""The database tables: campaigns, programs, divergence buckets and their samples.

A bucket is one bug: its title is the dedup key (docs/ARCHITECTURE.md, decision 7). A
sample is one sighting of it — the program that showed it, the step, what the
model expected and what the kernel did, on which kernel release with which
probed features. Programs are stored once, by hash. A campaign's operation
counts (OpCount) say how often each call, flag and outcome was exercised, and
its corpus entries (CorpusEntry) which programs first reached which features.
All times are stored as UTC and come back timezone-aware.

Triage state lives on the bucket: its status (STATUSES), a note, the bucket it
duplicates (set by hand, or by set_minimized when two buckets minimize to the
same program), how reliably it reproduces (on the kernel it was found on; each
build's own figure is a Reliability row) and its minimized program. Columns
added after the first release are nullable or have a server default, so
db.py can add them in place to an older database (migrate.py); tables added
after it (ADDED_TABLES) are created in place the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

CAMPAIGN_STATUSES = ("running", "done", "interrupted", "failed")
# A bucket's triage status. "new" and "regression" still need a person's look;
# "regression" is a "fixed" bucket seen again on a real kernel.
STATUSES = ("new", "kernel-bug", "model-bug", "false-positive", "fixed", "duplicate", "regression")
OPEN_STATUSES = ("new", "regression")


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored in UTC and always returned timezone-aware.

    SQLite keeps no zone, so naive values read back are UTC by construction.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store times in UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Campaign(Base):
    """One run of the fuzzer against one kernel, with its running totals."""

    __tablename__ = "campaign"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in CAMPAIGN_STATUSES) + ")",
            name="campaign_status",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kernel: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(200))
    options: Mapped[str] = mapped_column(Text)  # JSON object
    started: Mapped[datetime] = mapped_column(UTCDateTime)
    ended: Mapped[datetime | None] = mapped_column(UTCDateTime)
    programs: Mapped[int] = mapped_column(default=0)
    steps: Mapped[int] = mapped_column(default=0)
    divergences: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default="running")
    # Added by the heartbeat release (nullable: older databases gain it in place). The
    # campaign process stamps it every few seconds while it runs: a "running" campaign
    # whose heartbeat is old has lost its process (killed, or its machine went down).
    heartbeat: Mapped[datetime | None] = mapped_column(UTCDateTime)
    alive: Mapped[int | None]  # workers alive at the last heartbeat
    # Added by the resume release (nullable: older databases gain it in place). Each time
    # the campaign was continued (`mmfuzz run --resume`): a JSON list of [when the run
    # started (ISO, UTC), the seconds the campaign had run before it]; NULL: never
    # resumed. Its first run is the row's `started`, at 0 s.
    runs: Mapped[str | None] = mapped_column(Text)
    # Added by the build-identity release (fuzzer/store/identity.py); NULL in older rows,
    # which are known by their release alone: the kernel's `uname -v`, the UML binary's
    # hash (NULL on the host) and the user's name for the build.
    build: Mapped[str | None] = mapped_column(Text)
    binary: Mapped[str | None] = mapped_column(String(64))
    kernel_name: Mapped[str | None] = mapped_column(String(200))


class Program(Base):
    """A program in text format, stored once per hash."""

    __tablename__ = "program"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(String(16), unique=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime)


class Bucket(Base):
    """One distinct divergence, identified by its title."""

    __tablename__ = "bucket"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(500), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # buckets() order
    count: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(32), default="new")
    note: Mapped[str | None] = mapped_column(Text)
    # Added by the triage release: all nullable, so older databases gain them in place.
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("bucket.id"))
    reliability_hits: Mapped[int | None]  # runs of the program that diverged again ...
    reliability_runs: Mapped[int | None]  # ... out of this many
    minimized_program_id: Mapped[int | None] = mapped_column(ForeignKey("program.id"))
    minimized_step: Mapped[int | None]  # the diverging step in the minimized program
    original_calls: Mapped[int | None]
    minimized_calls: Mapped[int | None]
    # What the minimized program shows at its diverging step (the samples' expected and
    # observed describe their own programs); NULL before minimization or in older databases.
    minimized_expected: Mapped[str | None] = mapped_column(Text)
    minimized_observed: Mapped[str | None] = mapped_column(Text)


class Sample(Base):
    """One sighting of a bucket: which program, which step, expected versus observed."""

    __tablename__ = "sample"

    id: Mapped[int] = mapped_column(primary_key=True)
    bucket_id: Mapped[int] = mapped_column(ForeignKey("bucket.id"), index=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("program.id"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id"), index=True)
    step: Mapped[int]
    expected: Mapped[str] = mapped_column(Text)
    observed: Mapped[str] = mapped_column(Text)
    kernel: Mapped[str] = mapped_column(String(200))
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    # Comma-separated names of the injections active when seen ("" on a real kernel):
    # a divergence under injection is an emulated bug, not the kernel's.
    injections: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The kernel's probed features when seen (JSON object, fuzzer/observe/probe.py), so a
    # sample stays meaningful in a database merged from several kernels; NULL: not recorded.
    features: Mapped[str | None] = mapped_column(Text)
    # The kernel's build (`uname -v`) when seen; NULL: not recorded (older databases, guests).
    build: Mapped[str | None] = mapped_column(Text)
    # The UML binary's hash and the build's name, as its campaign recorded them; NULL:
    # the host, or not recorded (older databases, a sample without a campaign).
    binary: Mapped[str | None] = mapped_column(String(64))
    kernel_name: Mapped[str | None] = mapped_column(String(200))
    # The titles of the other divergences of the same step (JSON list), filed under this
    # sample's bucket, its primary symptom (fuzzer/oracle/primary.py); NULL: none recorded.
    symptoms: Mapped[str | None] = mapped_column(Text)


class OpCount(Base):
    """How many checked steps of a campaign exercised one thing: (call, what, value).

    what is "steps" (value ""), an argument's name (value: one flag set in it, the
    advice, the touch mode) or "outcome" (ok, an errno name, a signal). Workers add
    to the counts with their progress, in the same transaction.
    """

    __tablename__ = "op_count"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), primary_key=True)
    call: Mapped[str] = mapped_column(String(64), primary_key=True)
    what: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


class ProgressPoint(Base):
    """One worker's running totals at one moment: the series behind programs/s over time.

    A worker writes one about every ten seconds (fuzzer/campaign/harness.py), stamped
    with the store's clock, so a guest's worker and a host's share one time axis.
    """

    __tablename__ = "progress_point"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    worker: Mapped[int] = mapped_column(default=0)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    programs: Mapped[int] = mapped_column(default=0)  # the worker's, since it started
    steps: Mapped[int] = mapped_column(default=0)


class CorpusEntry(Base):
    """A program a campaign's worker kept because it covered semantic features no
    earlier program of that worker had (fuzzer/check/coverage.py), with those features.

    The shared corpus: workers plant stored entries at start and pull the ones others
    add while they run. Text is the format, so entries outlive generator changes.
    """

    __tablename__ = "corpus_entry"
    __table_args__ = (UniqueConstraint("campaign_id", "hash", name="corpus_campaign_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    hash: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    features: Mapped[str] = mapped_column(Text)  # JSON list: what it covered first
    created: Mapped[datetime] = mapped_column(UTCDateTime)


class BucketVariant(Base):
    """One variant of a bucket's minimized program (fuzzer/reduce/variants.py) and whether
    it triggers the bucket's divergence: same kind at the corresponding step."""

    __tablename__ = "bucket_variant"

    id: Mapped[int] = mapped_column(primary_key=True)
    bucket_id: Mapped[int] = mapped_column(ForeignKey("bucket.id"), index=True)
    axis: Mapped[str] = mapped_column(String(32))  # drop, add, kind, prot, lock, pages, process
    value: Mapped[str] = mapped_column(String(200))  # its value on the axis: "RW", "MAP_LOCKED"
    label: Mapped[str] = mapped_column(Text)
    base: Mapped[bool] = mapped_column(default=False)  # the program itself, on a set-axis
    program_id: Mapped[int] = mapped_column(ForeignKey("program.id"))
    step: Mapped[int]  # the diverging call's index in the variant
    triggers: Mapped[bool]
    # The variant's first divergence (the matching one when it triggers): its step (NULL:
    # none), kind and title; "unsupported: ..." as title when the model cannot predict it.
    diverged_step: Mapped[int | None]
    diverged_kind: Mapped[str] = mapped_column(String(32), default="")
    title: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime] = mapped_column(UTCDateTime)


class Reliability(Base):
    """How reliably a bucket's program reproduced on one kernel build (`mmfuzz repro`):
    one row per bucket and build, replaced by the next repro on that build."""

    __tablename__ = "reliability"

    id: Mapped[int] = mapped_column(primary_key=True)
    bucket_id: Mapped[int] = mapped_column(ForeignKey("bucket.id"), index=True)
    kernel: Mapped[str] = mapped_column(String(200))  # the release
    build: Mapped[str | None] = mapped_column(Text)
    binary: Mapped[str | None] = mapped_column(String(64))
    kernel_name: Mapped[str | None] = mapped_column(String(200))
    hits: Mapped[int]
    runs: Mapped[int]
    at: Mapped[datetime] = mapped_column(UTCDateTime)


# Tables a database made by an older mmfuzz may lack: created in place when it is opened.
ADDED_TABLES = frozenset({OpCount.__tablename__, ProgressPoint.__tablename__,
                          CorpusEntry.__tablename__, BucketVariant.__tablename__,
                          Reliability.__tablename__})
