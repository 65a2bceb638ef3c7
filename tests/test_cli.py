"""The `mmfuzz` command, driven through Typer's CliRunner: exit codes and what users read.

Exit status 0 is "ran, nothing diverged", 1 is "the kernel diverged from the
model" (`exec`), 2 is a mistake of the user's, shown as one line starting
with `mmfuzz: error:` and never as a traceback.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from fuzzer.cli.app import app
from fuzzer.model import Prediction
from fuzzer.model.world import World
from fuzzer.oracle import Divergence
from fuzzer.prog import Call, format_call, parse
from fuzzer.prog.program import MAX_CALLS
from fuzzer.prog.syscalls import ENOMEM
from fuzzer.store import SampleContext, open_store

ROOT = Path(__file__).parents[1]
SEEDS = ROOT / "corpus" / "seeds"
MMFUZZ = ROOT / ".venv" / "bin" / "mmfuzz"
NOBODY = 65534

check_module = importlib.import_module("fuzzer.check.program")

runner = CliRunner()


def invoke(*args: str, input: str | None = None) -> Result:
    # Wide enough that rich never wraps a title or a program line.
    return runner.invoke(app, list(args), input=input, env={"COLUMNS": "250"})


def assert_clean(result: Result) -> None:
    """No exception escaped the command (SystemExit is how Typer exits)."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output


def assert_user_error(result: Result, *needles: str) -> str:
    """Exit 2 with exactly one line, `mmfuzz: error: ...`, on stderr; returns it."""
    assert_clean(result)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mmfuzz: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'x.sqlite'}"


@pytest.fixture
def keep_affinity() -> Iterator[None]:
    """`bench` pins this process to one CPU; give later tests all of them back."""
    cpus = os.sched_getaffinity(0)
    yield
    os.sched_setaffinity(0, cpus)


# ------------------------------------------------------------------ exec


@pytest.mark.kernel
@pytest.mark.parametrize("seed", ["19-mlock-basic.prog", "28-touch-signals.prog"])
def test_exec_seed_lists_every_step(seed: str) -> None:
    path = SEEDS / seed
    program = parse(path.read_text())
    result = invoke("exec", str(path))
    assert_clean(result)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for i, call in enumerate(program.calls):
        step = [line for line in lines if line.startswith(f"{i:3}  {format_call(call)} ")]
        assert len(step) == 1, (i, format_call(call))
    assert f"no divergence in {len(program)} steps" in result.stdout
    assert "DIVERGES" not in result.stdout
    assert result.stderr == ""


@pytest.mark.kernel
def test_exec_from_stdin() -> None:
    text = (SEEDS / "01-populate-without-lock.prog").read_text()
    result = invoke("exec", "-", input=text)
    assert_clean(result)
    assert result.exit_code == 0, result.output
    assert "no divergence in 1 steps" in result.stdout


@pytest.mark.kernel
def test_exec_divergence_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel agrees with the model on every seed, so make the model wrong:
    # it predicts ENOMEM for every mlock (its state still follows the real call).
    real_step = check_module.world_step

    def wrong_step(world: World, call: Call) -> Prediction:
        prediction = real_step(world, call)
        return Prediction(ret=-ENOMEM) if call.name == "mlock" else prediction

    monkeypatch.setattr(check_module, "world_step", wrong_step)
    result = invoke("exec", str(SEEDS / "19-mlock-basic.prog"))
    assert_clean(result)
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "  1  mlock(@2, 3p)" in out and "DIVERGES" in out
    assert "result at step 1: result: mlock returned 0 instead of -ENOMEM" in out
    assert "  expected: -ENOMEM" in out
    assert "  observed: 0" in out
    assert "6 later steps not run" in out
    assert "no divergence" not in out


# ------------------------------------------------------------ user errors


def test_malformed_program_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.prog"
    path.write_text(
        "# a comment\nmmap(@0, 1p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)\nmlock(@0)\n"
    )
    assert_user_error(invoke("exec", str(path)), f"{path}:3:", "mlock takes 2 arguments")


def test_unknown_flag_in_program(tmp_path: Path) -> None:
    path = tmp_path / "flag.prog"
    path.write_text("mmap(@0, 1p, PROT_READ, MAP_PRIVATE|MAP_BOGUS, -1, 0)\n")
    assert_user_error(invoke("exec", str(path)), f"{path}:1:", "MAP_BOGUS")


def test_unknown_command_line_flag_is_a_usage_error() -> None:
    # Typer's own usage error (several lines), not `mmfuzz: error:`; exit status 2 all the same.
    result = invoke("exec", "--no-such-flag", str(SEEDS / "01-populate-without-lock.prog"))
    assert_clean(result)
    assert result.exit_code == 2
    assert "No such option: --no-such-flag" in result.stderr


def test_missing_program_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.prog"
    assert_user_error(invoke("exec", str(path)), str(path), "No such file or directory")


def test_program_file_is_a_directory(tmp_path: Path) -> None:
    assert_user_error(invoke("exec", str(tmp_path)), str(tmp_path), "Is a directory")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_program(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.prog"
    path.write_text(text)
    assert_user_error(invoke("exec", str(path)), str(path), "program has no calls")


def test_too_long_program(tmp_path: Path) -> None:
    path = tmp_path / "long.prog"
    path.write_text("touch(@0, read)\n" * (MAX_CALLS + 1))
    assert_user_error(invoke("exec", str(path)), str(path), f"at most {MAX_CALLS}")


def test_a_10_mb_program_file_is_refused_at_the_call_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge.prog"
    path.write_text("touch(@0, read)\n" * 700_000)  # 11 MB
    assert_user_error(invoke("exec", str(path)), f"{path}:{MAX_CALLS + 1}:",
                      f"more than {MAX_CALLS} calls")


def test_program_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "binary.prog"
    path.write_bytes(b"\xff\xfe mmap\n")
    assert_user_error(invoke("exec", str(path)), str(path))


@pytest.mark.parametrize(
    "args",
    [
        ["exec", "--budget", "0", "x.prog"],
        ["exec", "--budget", "soon", "x.prog"],
        ["run", "--workers", "0"],
        ["bench", "throughput", "--programs", "0"],
        ["triage", "show", "first"],
    ],
    ids=["budget-too-small", "budget-not-a-number", "no-workers", "no-programs", "id-not-int"],
)
def test_invalid_option_value(args: list[str]) -> None:
    result = invoke(*args)
    assert_clean(result)
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.stderr


@pytest.mark.parametrize(("cpus", "needle"), [
    ("99", "--cpus: CPU 99 is not one this process may run on (allowed: "),
    ("0,x", "--cpus 0,x: not a CPU list"),
])
def test_run_cpus_outside_the_allowed_set(cpus: str, needle: str) -> None:
    assert_user_error(invoke("run", "--time", "1", "--db", "sqlite://", "--cpus", cpus), needle)


def test_triage_list_corrupt_db(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.sqlite"
    path.write_bytes(b"this is not a database, " * 100)
    assert_user_error(invoke("triage", "list", "--db", f"sqlite:///{path}"),
                      str(path), "not a readable mmfuzz database")
    assert path.read_bytes() == b"this is not a database, " * 100


def test_triage_list_missing_db(tmp_path: Path) -> None:
    path = tmp_path / "none" / "missing.sqlite"
    assert_user_error(invoke("triage", "list", "--db", f"sqlite:///{path}"), str(path))
    assert not path.exists() and not path.parent.exists()  # list never creates a database


def test_triage_bad_url() -> None:
    assert_user_error(invoke("triage", "list", "--db", "nosuchdb://x"), "bad database URL")


def test_triage_show_unknown_id_on_empty_db(db_url: str) -> None:
    open_store(db_url).close()
    assert_user_error(invoke("triage", "show", "999", "--db", db_url), "no bucket with id 999")
    result = invoke("triage", "list", "--db", db_url)
    assert_clean(result)
    assert result.exit_code == 0
    assert "no divergence buckets" in result.stdout


# ------------------------------------------------------------------ triage

TITLE = "result: mlock returned 0 instead of -ENOMEM"


def _fill(url: str) -> tuple[int, str]:
    """Record one divergence twice (two campaigns found it) and another once."""
    program = parse((SEEDS / "19-mlock-basic.prog").read_text())
    other = parse((SEEDS / "28-touch-signals.prog").read_text())
    store = open_store(url)
    kernel = os.uname().release
    for _ in range(2):
        cid = store.start_campaign(kernel=kernel, host="test", options={})
        bid, _new = store.record(
            Divergence("result", TITLE, 1, "-ENOMEM", "0"),
            SampleContext(cid, program.text(), program.hash, kernel))
    store.record(
        Divergence("signal", "signal: touch(read) raised none instead of SIGSEGV", 3,
                   "SIGSEGV/MAPERR", "none"),
        SampleContext(None, other.text(), other.hash, kernel))
    store.close()
    return bid, program.text()


def test_triage_list(db_url: str) -> None:
    _fill(db_url)
    result = invoke("triage", "list", "--db", db_url)
    assert_clean(result)
    assert result.exit_code == 0, result.output
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    assert lines[0].split()[:3] == ["id", "kind", "count"]
    row = next(line for line in lines if line.endswith(TITLE))
    assert row.split()[:3] == ["1", "result", "2"]
    assert any("signal: touch(read) raised none" in line for line in lines)


def test_triage_show(db_url: str) -> None:
    bid, text = _fill(db_url)
    result = invoke("triage", "show", str(bid), "--db", db_url)
    assert_clean(result)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"#{bid} {TITLE}" in out
    assert "seen 2 times" in out
    assert "diverging at step 1" in out
    lines = out.splitlines()
    program_lines = text.splitlines()
    for i, line in enumerate(program_lines):
        marker = ">>" if i == 1 else "  "
        assert f" {marker} {i:3}  {line}" in lines
    assert sum(line.startswith(" >> ") for line in lines) == 1
    assert "  expected: -ENOMEM" in lines
    assert "  observed: 0" in lines
    assert "2 samples stored" in out


# --------------------------------------------------------------------- run


@pytest.mark.slow
@pytest.mark.kernel
def test_run_short_campaign(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    result = invoke("run", "--time", "3", "--runs", "50", "--db", url,
                    "--corpus", str(tmp_path / "corpus"), "--seeds", str(SEEDS),
                    "--crashes", str(tmp_path / "crashes"))  # not the repository's
    assert_clean(result)
    assert result.exit_code == 0, result.output
    assert "campaign" in result.stdout and "programs" in result.stdout
    campaigns = open_store(url, create=False).campaigns()
    assert len(campaigns) == 1
    c = campaigns[0]
    assert c.programs > 0 and c.steps > 0
    assert c.status == "done" and c.ended is not None
    assert f"campaign {c.id} done" in result.stdout


@pytest.mark.kernel
@pytest.mark.slow
def test_program_search_keeps_programs_in_the_corpus(tmp_path: Path) -> None:
    """With the default search the corpus is program text: every entry the campaign
    stored is in the --corpus folder too, and parses as a program."""
    corpus = tmp_path / "corpus"
    # Ended by its runs, not its (wall-clock) time, which a loaded machine can spend on
    # starting up: the seeds, libFuzzer's replay of them, and programs of its own.
    result = invoke("run", "--time", "120", "--runs", "160",
                    "--db", f"sqlite:///{tmp_path / 'x.sqlite'}",
                    "--corpus", str(corpus), "--seeds", str(SEEDS),
                    "--crashes", str(tmp_path / "crashes"))
    assert result.exit_code == 0, result.output
    assert "programs planted at the workers' start" in result.output  # the seeds at least
    entries = sorted(corpus.iterdir())
    stored = open_store(f"sqlite:///{tmp_path / 'x.sqlite'}").corpus_newest(100_000)[0]
    # Named as libFuzzer names its own inputs, so a program is in the folder once.
    assert {p.name for p in entries} == {hashlib.sha1(t.encode()).hexdigest() for t in stored}
    assert len(entries) > len(list(SEEDS.glob("*.prog")))  # programs of its own too
    for path in entries:
        parse(path.read_text(), str(path))


def test_a_search_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    result = invoke("run", "--search", "bogus", "--db", f"sqlite:///{tmp_path / 'x.sqlite'}")
    assert_user_error(result, "--search 'bogus': one of programs, bytes, random")


def test_a_feedback_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    result = invoke("run", "--feedback", "x", "--db", f"sqlite:///{tmp_path / 'x.sqlite'}")
    assert_user_error(result, "--feedback 'x': one of semantic, lines, both")


@pytest.mark.kernel
@pytest.mark.slow
@pytest.mark.parametrize(("search", "feedback"), [("bytes", "both"), ("random", "lines")])
def test_other_searches_and_feedbacks_still_run(tmp_path: Path, search: str,
                                                feedback: str) -> None:
    """The byte and random searches, with either feedback: programs are checked, and
    those that reach features first are stored (a byte search plants no text)."""
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    result = invoke("run", "--time", "3", "--db", url, "--search", search,
                    "--feedback", feedback, "--corpus", str(tmp_path / "corpus"),
                    "--crashes", str(tmp_path / "crashes"))
    assert result.exit_code == 0, result.output
    store = open_store(url, create=False)
    (c,) = store.campaigns()
    assert c.programs > 0 and c.options["feedback"] == feedback
    for _, text in store.corpus_after(0):
        parse(text)
    assert store.corpus_after(0)


@pytest.mark.slow
@pytest.mark.kernel
def test_run_minimizes_new_buckets(tmp_path: Path) -> None:
    """A campaign on an emulated bug opens a bucket, minimizes it, writes its folder."""
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    crashes = tmp_path / "crashes"
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "p.prog").write_text(
        "mmap(@8, 2p, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n"
        "touch(@9, read)\n"
        "mmap(@0, 4p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_POPULATE,"
        " -1, 0)\n"
        "touch(@1, write)\n")
    result = invoke("run", "--time", "2", "--runs", "1", "--db", url, "--seeds", str(seeds),
                    "--corpus", str(tmp_path / "corpus"), "--crashes", str(crashes),
                    "--inject", "populate-needs-lock")
    assert_clean(result)
    assert result.exit_code == 0, result.output
    store = open_store(url, create=False)
    (row,) = store.buckets()
    assert row.title == "presence: mmap(PRIVATE|ANONYMOUS|POPULATE) left pages not anonymous"
    assert (row.original_calls, row.minimized_calls) == (4, 1)
    detail = store.bucket(row.id)
    assert detail.samples[0].injections == ("populate-needs-lock",)
    (folder,) = crashes.iterdir()
    assert {p.name for p in folder.iterdir()} >= {"original.prog", "minimized.prog", "repro.c",
                                                  "report.txt"}


# ---------------------------------------------------------------- not root


def _drop_to_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def test_not_root_is_one_line() -> None:
    try:
        proc = subprocess.run(
            [str(MMFUZZ), "exec", "corpus/seeds/01-populate-without-lock.prog"],
            cwd=ROOT, capture_output=True, text=True, preexec_fn=_drop_to_nobody, timeout=60,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"},
        )
    except PermissionError:
        # The venv's interpreter is a symlink into /root/.pyenv (mode 0700), so
        # nobody cannot start mmfuzz at all; test_not_root_in_process covers the check.
        pytest.skip(f"{MMFUZZ.parent / 'python'} -> {MMFUZZ.parent.joinpath('python').resolve()}"
                    " is not executable by uid 65534")
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mmfuzz: error: ") and "root" in lines[0]


def test_not_root_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: NOBODY)
    seed = str(SEEDS / "01-populate-without-lock.prog")
    for args in (["exec", seed], ["run", "--time", "1", "--db", "sqlite://"],
                 ["bench", "throughput", "--programs", "1"]):
        assert_user_error(invoke(*args), "must run as root")


# ------------------------------------------------------------------- bench


@pytest.mark.slow
@pytest.mark.kernel
@pytest.mark.usefixtures("keep_affinity")
def test_bench_throughput() -> None:
    result = invoke("bench", "throughput", "--programs", "30")
    assert_clean(result)
    assert result.exit_code == 0, result.output
    assert "workload: 30 generated programs" in result.stdout
    assert "programs/s" in result.stdout and "steps/s" in result.stdout
    # The ceiling ran the same programs for the same steps (else a note says otherwise).
    assert "product / ceiling: " in result.stdout
    assert "note: the ceiling ran" not in result.stdout
    phases = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")]
    assert phases[:3] == ["spawn", "ptrace", "reap"] and "store" in phases
    # One stop a call (the executor's markers), plus a program's faults, forks and ends;
    # an entry and an exit stop a call would be over 2.
    stops = next(ln for ln in result.stdout.splitlines() if ln.startswith("ptrace stops: "))
    assert 1.0 <= float(stops.split()[2]) < 2.0, stops


@pytest.mark.slow
@pytest.mark.kernel
@pytest.mark.usefixtures("keep_affinity")
def test_bench_throughput_on_a_folder(tmp_path: Path) -> None:
    """--corpus runs a folder's programs, the first --programs in name order, on the
    product and on the ceiling alike; a file that is no program is skipped and said."""
    for seed in sorted(SEEDS.glob("*.prog"))[:4]:
        (tmp_path / seed.name).write_text(seed.read_text())
    (tmp_path / "00-not-a-program").write_text("mlock(\n")
    result = invoke("bench", "throughput", "--corpus", str(tmp_path), "--programs", "3")
    assert_clean(result)
    assert result.exit_code == 0, result.output
    first = sorted(SEEDS.glob("*.prog"))[:3]
    steps = sum(len(parse(p.read_text())) for p in first)
    assert f"workload: 3 programs of {tmp_path}, {steps} steps" in result.stdout
    assert "note: 1 files of" in result.stdout and "00-not-a-program" in result.stdout
    assert "product / ceiling: " in result.stdout
    assert "note: the ceiling ran" not in result.stdout


def test_bench_throughput_folder_errors(tmp_path: Path) -> None:
    assert_user_error(invoke("bench", "throughput", "--corpus", str(tmp_path / "none")),
                      "is not a folder")
    (tmp_path / "bad").write_text("not a program\n")
    assert_user_error(invoke("bench", "throughput", "--corpus", str(tmp_path)),
                      "holds no program")


@pytest.mark.slow
@pytest.mark.kernel
@pytest.mark.usefixtures("keep_affinity")
def test_bench_throughput_rounds() -> None:
    """--rounds pairs each product run with a ceiling run, and the figures printed are
    the round of the median ratio."""
    result = invoke("bench", "throughput", "--programs", "20", "--rounds", "3")
    assert_clean(result)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    rounds = [ln for ln in lines if ln.startswith("  round ")]
    assert [ln.split()[1] for ln in rounds] == ["1:", "2:", "3:"], result.stdout
    ratios = sorted(float(ln.rsplit(" ", 1)[1].rstrip("%")) for ln in rounds)
    shown = next(ln for ln in lines if ln.startswith("product / ceiling: "))
    assert float(shown.split()[3].rstrip("%")) == ratios[1], result.stdout


@pytest.mark.slow
@pytest.mark.kernel
@pytest.mark.usefixtures("keep_affinity")
def test_bench_memory(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'm.sqlite'}"
    result = invoke("bench", "memory", "--time", "12", "--every", "2", "--warmup", "4",
                    "--db", db)
    assert_clean(result)
    assert result.exit_code == 0, result.output
    samples = [ln for ln in result.stdout.splitlines() if ln.strip().split(" s ")[0].isdigit()]
    assert len(samples) >= 4 and all("campaign " in ln for ln in samples), result.stdout
    assert any("worker " in ln for ln in samples), result.stdout
    growth = [ln.split() for ln in result.stdout.splitlines()
              if ln.startswith("  ") and not ln.strip()[0].isdigit()]
    assert [g[0] for g in growth][:2] == ["campaign", "worker"], result.stdout
    assert all(g[-1] == "MB/min)" for g in growth), result.stdout


def test_bench_memory_warm_up_within_the_time() -> None:
    assert_user_error(invoke("bench", "memory", "--time", "20", "--warmup", "20"),
                      "--warmup 20 is not shorter than --time 20")


def test_help_has_examples() -> None:
    for args in (["exec"], ["run"], ["triage", "list"], ["triage", "show"],
                 ["bench", "throughput"], ["bench", "memory"]):
        result = invoke(*args, "--help")
        assert result.exit_code == 0, args
        assert "Example: mmfuzz" in result.stdout, args



@pytest.mark.kernel
@pytest.mark.slow
def test_a_fresh_campaign_plants_nothing_stored(tmp_path: Path) -> None:
    """`--fresh`: the corpus an earlier campaign stored in the database and the folder
    are not planted; without it they are."""
    db, corpus = f"sqlite:///{tmp_path / 'x.sqlite'}", tmp_path / "corpus"
    common = ("--time", "120", "--runs", "60", "--db", db, "--corpus", str(corpus),
              "--seeds", str(tmp_path / "none"), "--crashes", str(tmp_path / "crashes"))
    first = invoke("run", *common)
    assert first.exit_code == 0, first.output
    assert "programs planted" not in first.output  # nothing stored yet, no seeds
    fresh = invoke("run", "--fresh", *common)
    assert fresh.exit_code == 0, fresh.output
    assert "programs planted" not in fresh.output
    shared = invoke("run", *common)
    assert shared.exit_code == 0, shared.output
    assert "programs planted at the workers' start" in shared.output
    options = [c.options for c in open_store(db, create=False).campaigns()]
    assert sorted(o["fresh"] for o in options) == [False, False, True]
