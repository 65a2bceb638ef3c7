"""A worker's semantic feedback to libFuzzer, and its share of the campaign's corpus.

`Feedback` reserves a block of libFuzzer's 8-bit counters (atheris's own, the
ones its instrumentation hits) before `atheris.Setup` registers them, maps every
semantic feature (fuzzer/check/coverage.py) to one by a stable hash, and hits
the counters of a program's features after it runs: an input that reaches a
feature no earlier one did is NEW to libFuzzer, and kept. It also keeps the
set of features the worker has seen, whose growth is the campaign's coverage.

`SharedCorpus` is the corpus in the database (store/corpus.py): a program that
covers a feature first is stored with those features. Programs reach libFuzzer
through its `inbox`: the harness's custom mutator hands out the next one
instead of a mutant, libFuzzer runs it, and keeps it if it hit counters no
input had. That is what libFuzzer's -reload does with a folder's new files,
without the folder: -reload lists the whole folder every second, and a
campaign's corpus grows by tens of thousands of programs an hour (an hour-long
soak left 78,739 files, and libFuzzer stats each one at every listing).
Into the inbox go, at start, the campaign's newest stored programs (a resumed
campaign's), the newest of every campaign, the seeds and the buckets' minimized
programs; every few seconds the entries other workers added since; and a fresh
program (not libFuzzer's input) that reached a new feature.

With a folder (`--corpus`), every program stored is also written there as a
file named by the SHA-1 of its text (as libFuzzer names its own), and the
folder's newest files are planted at start: the corpus kept across campaigns
as files. A folder whose file system is full takes no more: the worker says so
once, as a warning, and goes on.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import time
import zlib
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import atheris

from fuzzer.campaign.packed import pack
from fuzzer.campaign.seen import FeatureSet
from fuzzer.prog import Program, ProgramError, parse
from fuzzer.prog.program import text_hash
from fuzzer.store.ports import WorkerStore

# libFuzzer counters for the semantic features, one per feature modulo the size: a campaign
# reaches tens of thousands (25,000 in 10 min, 41,000 in an hour), and a feature that shares
# its counter with one seen before is not new to libFuzzer. 2^18 keeps about 85 % of 41,000
# on a counter of their own; libFuzzer scans the block per input (256 KiB, microseconds).
COUNTERS = 1 << 18
PULL_EVERY = 5.0  # seconds between pulls of other workers' entries
PLANTED_ENTRIES = 2000  # newest stored corpus entries planted at start
PLANTED_BUCKETS = 200  # minimized programs of stored buckets planted at start
PLANTED_FILES = 2000  # newest files of the corpus folder planted at start
INBOX = 20_000  # programs waiting for libFuzzer at most (more are dropped: a bound, not a case)


class Feedback:
    """The features a worker has seen and, with `counters`, libFuzzer's counters for them."""

    def __init__(self, counters: bool = True, size: int = COUNTERS) -> None:
        self.size = size if counters else 0
        self.first = 0
        if self.size:
            # Reserved one by one and consecutive (atheris hands out the next index);
            # registered with libFuzzer by atheris.Setup, so reserve before it.
            self.first = atheris._reserve_counter()
            for _ in range(self.size - 1):
                atheris._reserve_counter()
        self.seen = FeatureSet()

    def hit(self, features: frozenset[str], counters: bool = True) -> list[str]:
        """Hit the features' counters (for the input libFuzzer is running); the ones
        never seen before, now seen."""
        if self.size and counters:
            for feature in features:
                atheris._trace_branch(self.first + counter(feature, self.size))
        return self.seen.add_new(features)


def counter(feature: str, size: int) -> int:
    """The feature's counter in a block of `size`: stable across runs and processes.
    (Not cached: a cache of every feature seen would grow with them, and the CRC of a
    feature costs about a microsecond.)"""
    return zlib.crc32(feature.encode()) % size


class SharedCorpus:
    """The database's corpus, as one worker of a campaign adds to it and reads it, and
    the programs waiting to be libFuzzer's inputs (`inbox`, taken by `next_input`).

    Not `shared` (a worker in a guest kernel, whose store calls cross a serial line,
    where a batch of entries and a pull of every entry since the last are too much
    text), nothing is stored or pulled; the seeds and the buckets' minimized programs
    are still planted. Without `inputs` (a byte search, whose inputs are not program
    text), nothing is queued: entries are stored, that is all. Without `others` (a
    campaign that starts from nothing, Options.fresh), what other campaigns stored is
    not planted: neither their entries, nor the buckets' minimized programs, nor the
    folder's files (the folder is still written)."""

    def __init__(self, store: WorkerStore, campaign: int, folder: Path | None,
                 shared: bool = True, inputs: bool = True, others: bool = True) -> None:
        self.store, self.campaign, self.folder = store, campaign, folder
        self.shared, self.inputs, self.others = shared, inputs, others
        self.inbox: deque[bytes] = deque()  # packed texts for libFuzzer to run, oldest first
        self.last = 0  # the highest entry id this worker has read
        self.mine: set[int] = set()  # entry ids it added itself
        self.pending: list[tuple[str, str, list[str]]] = []  # added, not yet stored
        self.next_pull = time.monotonic() + PULL_EVERY
        self.full = False  # the folder's file system is full: nothing more is written
        self.warnings: list[str] = []  # for the worker to report (take_warnings)
        if folder is not None:  # at once: a path that cannot be one ends the worker at its start
            folder.mkdir(parents=True, exist_ok=True)

    def add(self, program: Program, features: list[str], deliver: bool = False) -> None:
        """Store the program with the features it reached first, at the next store(),
        and write it into the folder; with `deliver`, queue it for libFuzzer too (it
        was not libFuzzer's input, so libFuzzer does not know it)."""
        text = program.text()  # once: the campaign adds about a hundred programs a second
        self.pending.append((text, text_hash(text), features))
        self._write(text)
        if deliver:
            self._queue([text])

    def store_pending(self) -> None:
        """Store what was added since the last call, in one transaction."""
        if self.pending and self.shared:
            ids = self.store.add_corpus_many(self.campaign, self.pending)
            self.mine.update(i for i in ids if i is not None)
        self.pending = []

    def plant(self, seeds: list[Program]) -> int:
        """Queue the seeds, the buckets' minimized programs, the newest stored entries
        and the folder's newest files (unparsable ones are left out: stored before a
        grammar change), each once; how many were queued. Without `others`, only the
        seeds and the campaign's own entries."""
        texts: list[str] = []
        if self.shared:  # the campaign's own entries (it may be resumed), and everyone's
            texts, _ = self.store.corpus_newest(PLANTED_ENTRIES, campaign=self.campaign)
            # `last` either way: a pull goes on after what was stored before the start.
            newest, self.last = self.store.corpus_newest(PLANTED_ENTRIES if self.others else 0)
            texts += newest
        if self.others:
            texts += self.store.minimized_programs(PLANTED_BUCKETS)
            texts += self._folder_texts(PLANTED_FILES)
        return self._queue([p.text() for p in [*seeds, *_parsed(texts)]])

    def pull(self, now: float) -> int:
        """Every PULL_EVERY seconds: queue the entries other workers added since the last
        pull; how many. (Not parsed here: written by workers of this campaign, in this
        grammar, they are parsed when libFuzzer runs them. Parsing each one twice took
        a tenth of a worker's time.)"""
        if now < self.next_pull or not self.shared:
            return 0
        self.next_pull = now + PULL_EVERY
        rows = self.store.corpus_after(self.last)
        if not rows:
            return 0
        self.last = max(entry for entry, _ in rows)
        texts = [text for entry, text in rows if entry not in self.mine]
        # No later pull returns an entry up to `last`: its own ones are forgotten.
        self.mine = {entry for entry in self.mine if entry > self.last}
        return self._queue(texts)

    def next_input(self, max_size: int) -> bytes | None:
        """The oldest queued program as libFuzzer's input (its packed text: packed.py)
        that fits in max_size bytes, or None when none is waiting (a longer one is
        passed over: libFuzzer could not keep it)."""
        while self.inbox:
            data = self.inbox.popleft()
            if len(data) <= max_size:
                return data
        return None

    def take_warnings(self) -> list[str]:
        """What went wrong with the folder since the last call, once each."""
        warnings, self.warnings = self.warnings, []
        return warnings

    def _queue(self, texts: Iterable[str]) -> int:
        if not self.inputs:
            return 0
        queued = list(dict.fromkeys(texts))  # each once, in order
        room = max(0, INBOX - len(self.inbox))
        self.inbox.extend(pack(t.encode()) for t in queued[:room])  # packed only if kept
        return min(len(queued), room)

    def _folder_texts(self, newest: int) -> list[str]:
        """The texts of the folder's `newest` files, newest first."""
        if self.folder is None or not self.folder.is_dir():
            return []
        files = sorted((e for e in os.scandir(self.folder) if e.is_file()),
                       key=lambda e: e.stat().st_mtime_ns, reverse=True)[:newest]
        texts = []
        for entry in files:
            with contextlib.suppress(OSError, UnicodeDecodeError):
                texts.append(Path(entry.path).read_text())
        return texts

    def _write(self, text: str) -> None:
        """The program text into the folder, as a file named by its SHA-1 (as libFuzzer
        names its files), unless that file is there already."""
        if self.folder is None or self.full:
            return
        data = text.encode()
        path = os.path.join(self.folder, hashlib.sha1(data).hexdigest())
        made = False
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            made = True
            with open(fd, "wb") as f:
                f.write(data)
        except FileExistsError:
            return
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            if made:
                os.unlink(path)  # not a truncated program
            self.full = True
            self.warnings.append(f"the corpus folder {self.folder} is full "
                                 f"({e.strerror}) after {len(os.listdir(self.folder))}"
                                 " files: no more programs are written to it")


def _parsed(texts: Iterable[str]) -> list[Program]:
    programs = []
    for text in texts:
        try:
            programs.append(parse(text, "a stored corpus program"))
        except ProgramError:
            continue
    return programs
