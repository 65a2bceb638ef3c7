"""How a campaign looks to people: its summary (its progress: live.py).

(An exec transcript is fuzzer/campaign/transcript.py: a guest prints it too.)
"""

from __future__ import annotations

from dataclasses import fields

from fuzzer.campaign.run import Progress
from fuzzer.cli.common import out
from fuzzer.model.features import Features
from fuzzer.observe.probe import probe
from fuzzer.prog import ARENA
from fuzzer.prog.arena import HOST, SIZE_ENV
from fuzzer.store import Store


def print_summary(p: Progress, store: Store) -> None:
    secs = max(p.elapsed, 1e-9)
    out.print(f"\ncampaign {p.campaign_id} {p.status}: {p.elapsed:.0f} s, {p.programs:,} programs "
              f"({p.programs / secs:,.0f}/s), {p.steps:,} checked steps ({p.steps / secs:,.0f}/s), "
              f"{len(p.features):,} semantic features", markup=False)
    out.print(f"database: {store.url}", markup=False)
    row = store.campaign(p.campaign_id)
    features = row.options.get("features")
    names = {f.name for f in fields(Features)}
    known = (Features(**{k: v for k, v in features.items() if k in names})
             if isinstance(features, dict) else probe())
    where = "" if row.options.get("kernel", "host") == "host" else f" in {row.options['kernel']}"
    out.print(f"kernel: {known.summary()}{where}", markup=False)
    if ARENA.pages != HOST.pages:
        out.print(f"arena: {ARENA.pages} pages ({SIZE_ENV}=huge)", markup=False)
    for warning in p.warnings:
        out.print(f"warning: {warning}", markup=False)
    if p.restarts:
        out.print(f"workers restarted {p.restarts} times after dying", markup=False)
    if p.recycled:
        out.print(f"workers restarted {p.recycled} times for their size (--worker-rss)",
                  markup=False)
    if p.planted:
        out.print(f"corpus: {p.planted:,} programs planted at the workers' start", markup=False)
    if p.kept:
        out.print(f"worker logs kept in {p.kept}", markup=False)
    if p.unsupported:
        out.print(f"warning: {p.unsupported} programs skipped: the model refused a call in them "
                  "(a call it does not predict on this kernel, such as a read of a present "
                  "write-only page under UML)", markup=False)
    if not p.buckets:
        out.print("no divergence found")
        return
    out.print(f"{len(p.buckets)} divergence buckets ({p.new_buckets} new):", markup=False)
    for bid, (title, new) in sorted(p.buckets.items()):
        flag = "new " if new else "    "
        out.print(f"  #{bid:<5} {flag} x{p.hits.get(bid, 0):<5} {title}", markup=False)
    out.print("see them with: mmfuzz triage list; mmfuzz triage show ID")
