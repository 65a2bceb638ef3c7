"""`mmfuzz stats`: what campaigns exercised, from the counts their workers stored.

`stats ops` shows, per call, how many checked steps ran it, how often each
flag (or advice, or touch mode) was set in them and how they ended (ok, an
errno, a signal), as a table for people or as JSON (`--json`). `stats
coverage` shows the semantic features a campaign reached (fuzzer/check/coverage.py),
by call, and how they grew over its run, from its stored corpus entries.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from fuzzer.campaign import coverage
from fuzzer.campaign.ops import OpsSummary, summary
from fuzzer.cli.common import DEFAULT_DB, DbOption, fail, out, user_errors
from fuzzer.store import CampaignRow, Store, open_store

app = typer.Typer(help="What campaigns exercised.", no_args_is_help=True)

CampaignOpt = Annotated[str | None, typer.Option(
    "--campaign", metavar="ID|all",
    help="Campaign id, or 'all' to sum over every campaign (default: the latest).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command("ops")
def ops_cmd(campaign: CampaignOpt = None, as_json: JsonOpt = False,
            db: DbOption = DEFAULT_DB) -> None:
    """How often each call, flag and outcome (ok, errno, signal) was exercised.

    Shares are of the call's steps: a flag's share is how many of them set it.

    Example: mmfuzz stats ops --campaign all
    """
    with user_errors():
        store = open_store(db, create=False, read_only=True)
        campaigns = _campaigns(store, campaign)
        cid = campaigns[0].id if campaign != "all" else None
        ops = summary(store.op_counts(cid))
    if as_json:
        typer.echo(json.dumps({"campaign": cid, "campaigns": [c.id for c in campaigns],
                               "programs": sum(c.programs for c in campaigns),
                               "campaign_steps": sum(c.steps for c in campaigns),
                               **asdict(ops), "success": ops.success()}, indent=2))
        return
    _print(campaigns, cid, ops)


@app.command("coverage")
def coverage_cmd(campaign: CampaignOpt = None, as_json: JsonOpt = False,
                 db: DbOption = DEFAULT_DB) -> None:
    """The semantic features a campaign reached: events and pairs of events, by call,
    and how many it had reached how many seconds after its start.

    A feature is a call class, its outcome and the state of its range before it
    ("mlock2(ONFAULT) ok on present"), or two successive calls on one range.

    Example: mmfuzz stats coverage --campaign 3 --json
    """
    with user_errors():
        store = open_store(db, create=False)
        campaigns = _campaigns(store, campaign)
        rows = store.corpus_features([c.id for c in campaigns])
        one = campaigns[0] if campaign != "all" else None
        cov = coverage.summary([(when, f) for _, when, f in rows],
                               one.seconds if one is not None else None)
    if as_json:
        typer.echo(json.dumps({"campaign": one.id if one else None,
                               "campaigns": [c.id for c in campaigns], **asdict(cov)},
                              indent=2))
        return
    head = (f"campaign {one.id} ({one.status}, {one.started:%Y-%m-%d %H:%M})" if one
            else f"{len(campaigns)} campaigns")
    out.print(f"{head}: {cov.features:,} semantic features ({cov.events:,} events, "
              f"{cov.pairs:,} pairs)", markup=False)
    if not cov.features:
        out.print("no corpus entries stored (campaigns before mmfuzz stored them have none)")
        return
    wide = max(map(len, cov.by_call))
    out.print(f"\n  {'call':<{wide}}  {'events':>7}  {'pairs':>7}", markup=False)
    for call, (events, pairs) in cov.by_call.items():
        out.print(f"  {call:<{wide}}  {events:>7,}  {pairs:>7,}", markup=False)
    if cov.growth:
        out.print("\nreached after: " + " · ".join(
            f"{t:g} s {n:,}" for t, n in coverage.at_checkpoints(cov.growth)), markup=False)


def _campaigns(store: Store, which: str | None) -> list[CampaignRow]:
    """The campaigns asked for: one by id, the latest (None) or all of them."""
    if which is None or which == "all":
        found = store.campaigns()
        if not found:
            raise fail(f"no campaign in {store.url} yet (run one: mmfuzz run)")
        return found if which == "all" else found[:1]
    if not which.isdigit():
        raise fail(f"--campaign {which!r}: give a campaign id (mmfuzz triage stats) or 'all'")
    return [store.campaign(int(which))]


def _print(campaigns: list[CampaignRow], cid: int | None, ops: OpsSummary) -> None:
    programs, steps = sum(c.programs for c in campaigns), sum(c.steps for c in campaigns)
    if cid is not None:
        c = campaigns[0]
        head = f"campaign {c.id} ({c.status}, kernel {c.kernel}, {c.started:%Y-%m-%d %H:%M})"
    else:
        head = f"{len(campaigns)} campaigns"
    out.print(f"{head}: {programs:,} programs, {steps:,} checked steps", markup=False)
    if not ops.calls:
        out.print("no operation counts stored (campaigns before mmfuzz counted them have none)")
        return
    if ops.steps != steps:
        out.print(f"operation counts cover {ops.steps:,} of the {steps:,} steps (campaigns "
                  "before mmfuzz counted them have none)", markup=False)
    rates = ops.success()
    out.print("succeeded: " + " · ".join(f"{name} {_share(ok, n)}" for name, (ok, n)
                                          in rates.items() if n), markup=False)
    names = [v for c in ops.calls.values() for d in (*c.args.values(), c.outcomes) for v in d]
    wide = max(map(len, names), default=0)
    what = max((len(a) for c in ops.calls.values() for a in (*c.args, "outcome")), default=0)
    num = len(f"{ops.steps:,}")
    for call, counts in ops.calls.items():
        out.print(f"\n{call}: {counts.steps:,} steps ({_share(counts.steps, ops.steps)} of all)",
                  markup=False)
        for label, values in (*counts.args.items(), ("outcome", counts.outcomes)):
            for i, (value, n) in enumerate(values.items()):
                out.print(f"  {label if i == 0 else '':<{what}}  {value:<{wide}}  {n:>{num},}  "
                          f"{_share(n, counts.steps):>6}", markup=False)
    if ops.not_exercised:
        out.print(f"\nnot exercised: {', '.join(ops.not_exercised)}", markup=False)


def _share(n: int, of: int) -> str:
    return f"{100 * n / of:.1f}%" if of else "-"
