"""Token-endpoint throughput: this IdP against node-oidc-provider, same grants, same load.

    python bench/token_grants.py [--rounds 3] [--duration 10s] [--connections 16] [--only ours|node]

For each server and each grant (client_credentials; refresh_token with rotation, every
request spending a distinct pre-minted refresh token) it runs a short wrk warm-up, then the
measured wrk run, and prints tokens/s, p50 and p99 latency and the ratio ours/node. A run
with any non-2xx answer, socket error or exhausted token supply is reported INVALID, never
as throughput, and makes the exit status 1.

A single run of either server can come out 10-40% below its usual rate on a shared two-core
machine, and it stays so for the life of that process. So the measurement is repeated in
rounds, each with newly started servers (new databases, new tokens) and the order of the
servers swapped every round; each round prints its own table, and the end prints every
round's ratio with their median and lowest.

Only one server runs at a time: on two cores an idle peer still takes CPU (GC, background
tasks) from the server under load and from wrk. Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import environment
from harness.peers import NODE_DIR, REPO_ROOT, Target, ensure_node_modules, node_oidc_provider, our_idp
from harness.processes import BenchError
from harness.wrk import WrkResult
from harness.wrk import run as run_wrk

GRANTS = ("client_credentials", "refresh_token")
SERVERS = ("node", "ours")
CLIENT_CREDENTIALS_BODY = "grant_type=client_credentials&scope=api"
# Refresh tokens minted per second of wrk time (warm-up + measured): well above what either
# server reaches on this kind of machine; a run that runs out is reported invalid anyway.
TOKENS_PER_SECOND = 20_000
# The server under test is idle between runs; more than this much CPU busy means another
# program is running and taking cores from the benchmark.
BUSY_WARNING = 0.15
# Percent of one core that other programs may take during a measured run before its status
# says "disturbed": its figures are then lower than the machine allows.
DISTURBED = 20.0


@dataclass(slots=True, frozen=True)
class Run:
    wrk: WrkResult
    cpu: environment.CpuShare | None


Results = dict[str, dict[str, Run]]


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def split_tokens(path: Path, warmup_count: int) -> tuple[Path, Path]:
    """The first ``warmup_count`` tokens for the warm-up, the rest for the measured run."""
    lines = [line for line in path.read_text().splitlines() if line]
    warm, measured = path.with_suffix(".warmup"), path.with_suffix(".measured")
    warm.write_text("\n".join(lines[:warmup_count]) + "\n")
    measured.write_text("\n".join(lines[warmup_count:]) + "\n")
    return warm, measured


def load(
    target: Target, grant: str, seconds: int, args: argparse.Namespace, tokens: Path | None
) -> WrkResult:
    env = {"BENCH_AUTHORIZATION": target.authorization}
    if grant == "client_credentials":
        script = "form_post.lua"
        env["BENCH_FORM_BODY"] = CLIENT_CREDENTIALS_BODY
    else:
        script = "refresh.lua"
        env["BENCH_TOKEN_FILE"] = str(tokens)
    result, output = run_wrk(
        target.token_url,
        script,
        env=env,
        seconds=seconds,
        connections=args.connections,
        threads=args.threads,
    )
    if args.verbose:
        print(output, end="", flush=True)
    return result


def warn_if_busy(what: str) -> None:
    busy = environment.cpu_busy()
    if busy is not None and busy > BUSY_WARNING:
        print(f"warning: {busy:.0%} of the CPU was busy just before {what}: figures will be low")


def measure(target: Target, args: argparse.Namespace) -> dict[str, Run]:
    results = {}
    for grant in args.grants:
        warn_if_busy(f"{target.name} {grant}")
        warm_tokens = run_tokens = None
        if grant == "refresh_token":
            warm_tokens, run_tokens = split_tokens(target.refresh_tokens, TOKENS_PER_SECOND * args.warmup)
        if args.warmup:
            warm = load(target, grant, args.warmup, args, warm_tokens)
            if not warm.valid:
                print(f"{target.name} {grant}: warm-up had problems: {'; '.join(warm.problems)}")
        meter = environment.CpuMeter(target.pid)
        result = load(target, grant, args.duration, args, run_tokens)
        run = results[grant] = Run(result, meter.stop())
        verdict = "ok" if result.valid else "INVALID: " + "; ".join(result.problems)
        print(
            f"{target.name} {grant}: {result.rps:.0f}/s, p50 {result.p50_ms:.2f} ms, "
            f"p99 {result.p99_ms:.2f} ms, {cpu_note(run.cpu)}: {verdict}",
            flush=True,
        )
    return results


def cpu_note(cpu: environment.CpuShare | None) -> str:
    if cpu is None:
        return "CPU use unknown"
    return f"server CPU {cpu.server:.0f}%, other programs {cpu.other:.0f}% (of one core)"


ROW = "{:<19} {:<6} {:>9} {:>8} {:>8} {:>7} {:>9} {:>8} {:>9} {:>9}  {}"


def print_table(results: Results, grants: tuple[str, ...]) -> None:
    header = ROW.format(
        "grant",
        "server",
        "tokens/s",
        "p50 ms",
        "p99 ms",
        "non2xx",
        "requests",
        "srv cpu",
        "other cpu",
        "cpu us/tok",
        "status",
    )
    print()
    print(header)
    print("-" * len(header))
    for grant in grants:
        for server, by_grant in results.items():
            r, cpu = by_grant[grant].wrk, by_grant[grant].cpu
            if r.valid:
                figures = (f"{r.rps:.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}")
                status = "ok"
            else:
                figures = ("-", "-", "-")
                status = "INVALID: " + "; ".join(r.problems)
            shares = (f"{cpu.server:.0f}%", f"{cpu.other:.0f}%") if cpu else ("?", "?")
            per_token = cpu_per_token(by_grant[grant])
            if r.valid and cpu and cpu.other > DISTURBED:
                status = "ok, disturbed (other programs were busy: figures are low)"
            cost = f"{per_token:.0f}" if per_token is not None else "-"
            print(ROW.format(grant, server, *figures, r.non2xx, r.requests, *shares, cost, status))
    print()
    if not {"ours", "node"} <= results.keys():
        print("ratio ours/node: needs both servers (run without --only)")
        return
    for grant in grants:
        ours, node = results["ours"][grant].wrk, results["node"][grant].wrk
        ratio = f"{ours.rps / node.rps:.2f}" if ours.valid and node.valid else "n/a (a run is invalid)"
        print(f"ratio ours/node  {grant:<19} {ratio}")
    for grant in grants:
        ours_cost, node_cost = cpu_per_token(results["ours"][grant]), cpu_per_token(results["node"][grant])
        ratio = f"{node_cost / ours_cost:.2f}" if ours_cost and node_cost else "n/a"
        print(f"cpu ratio node/ours  {grant:<19} {ratio}  (server CPU per token; above 1 ours uses less)")


def cpu_per_token(run: Run) -> float | None:
    """The server's CPU µs per token of a valid run."""
    return run.cpu.per_request_us(run.wrk.requests) if run.cpu and run.wrk.valid else None


def print_environment(args: argparse.Namespace, bin_dir: Path) -> None:
    rows = [
        ("cpu", f"{environment.cpu_model()}, {environment.cores()}"),
        ("driver python", sys.version.split()[0]),
        ("wrk", environment.first_line(["wrk", "-v"])),
    ]
    if "ours" in args.servers:
        rows.append(("our python", environment.interpreter(bin_dir / "python")))
        rows.append(("our commit", environment.commit(REPO_ROOT)))
    if "node" in args.servers:
        rows.append(("node", environment.first_line(["node", "--version"])))
        rows.append(("oidc-provider", environment.npm_package_version(NODE_DIR, "oidc-provider")))
    rows.append(("load average", f"{environment.load_average()} (before the run)"))
    load = f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s after a {args.warmup}s warm-up"
    rows.append(("load", load))
    rows.append(("rounds", f"{args.rounds}, each with newly started servers, the order swapped each round"))
    environment.print_rows(rows)


def parse_seconds(text: str) -> int:
    match = re.fullmatch(r"(\d+)([smh]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration like 10s, 2m or 30, got {text!r}")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--rounds", type=int, default=3, help="rounds with newly started servers (default 3)")
    add("--duration", type=parse_seconds, default=10, help="measured wrk run per grant (default 10s)")
    add("--warmup", type=parse_seconds, default=2, help="wrk warm-up before each run (default 2s)")
    add("--connections", type=int, default=16, help="wrk -c (default 16)")
    add("--threads", type=int, default=1, help="wrk -t (default 1)")
    add("--only", choices=SERVERS, help="benchmark one server only")
    add("--grant", choices=GRANTS, action="append", help="benchmark this grant only (repeatable)")
    add("--refresh-tokens", type=int, help=f"per server (default {TOKENS_PER_SECOND} per second of wrk)")
    add("--json", type=Path, help="also write the results to this file")
    add("--keep", action="store_true", help="keep the work directory (logs, databases, token files)")
    add("--verbose", action="store_true", help="print wrk's own output")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.connections < args.threads:
        parser.error("--threads must be at least 1 and --connections at least --threads")
    if args.duration < 1:
        parser.error("--duration must be at least 1s")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    args.servers = (args.only,) if args.only else SERVERS
    args.grants = tuple(dict.fromkeys(args.grant)) if args.grant else GRANTS
    if "refresh_token" not in args.grants:
        args.refresh_tokens = 0
    elif args.refresh_tokens is None:
        args.refresh_tokens = TOKENS_PER_SECOND * (args.duration + args.warmup)
    return args


def our_bin_dir() -> Path:
    """The repository's ``.venv/bin``, else the directory of the Python running this script."""
    for candidate in (REPO_ROOT / ".venv" / "bin", Path(sys.executable).parent):
        if (candidate / "idp").exists():
            return candidate
    raise BenchError("no idp command in .venv/bin nor beside this Python: pip install -e . first")


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM leaves the same way as Ctrl-C, through the context managers that stop servers.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in ("wrk", *(["node", "npm"] if "node" in args.servers else [])):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not on PATH")
    # Ctrl-C must raise even where SIGINT came in ignored (a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    if "node" in args.servers:
        ensure_node_modules()
    bin_dir = our_bin_dir() if "ours" in args.servers else Path(sys.executable).parent
    print_environment(args, bin_dir)

    work = Path(tempfile.mkdtemp(prefix="idp-token-bench-"))
    rounds: list[Results] = []
    try:
        for number in range(1, args.rounds + 1):
            order = args.servers if number % 2 else tuple(reversed(args.servers))
            print(f"\nround {number} of {args.rounds}: {', then '.join(order)}", flush=True)
            rounds.append(run_round(work / f"round-{number}", order, args, bin_dir))
            print_table(rounds[-1], args.grants)
    finally:
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print_summary(rounds, args.grants)
    if args.json:
        document = {"rounds": [round_document(results) for results in rounds]}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    runs = [run for results in rounds for by_grant in results.values() for run in by_grant.values()]
    valid = all(run.wrk.valid for run in runs)
    return 0 if valid else 1


def run_round(work: Path, order: tuple[str, ...], args: argparse.Namespace, bin_dir: Path) -> Results:
    """Each server of ``order`` started anew under ``work``, measured, stopped."""
    work.mkdir(parents=True)
    results: Results = {}
    try:
        for name in order:
            if name == "node":
                server = node_oidc_provider(work, refresh_tokens=args.refresh_tokens)
            else:
                server = our_idp(work, bin_dir=bin_dir, refresh_tokens=args.refresh_tokens)
            with server as target:
                results[name] = measure(target, args)
    except BaseException:
        if results:
            print_table(results, args.grants)  # what finished before the failure
        raise
    return results


def print_summary(rounds: list[Results], grants: tuple[str, ...]) -> None:
    """Every round's ratio per grant, their median and the lowest; tokens/s likewise per server."""
    if len(rounds) < 2:
        return
    print(f"\nover {len(rounds)} rounds (newly started servers each round):")
    for grant in grants:
        for server in rounds[0]:
            rates = [r[server][grant].wrk.rps for r in rounds if r[server][grant].wrk.valid]
            if rates:
                listed = " ".join(f"{rate:.0f}" for rate in rates)
                print(f"tokens/s {server:<5} {grant:<19} {listed}  median {median(rates):.0f}")
    if not {"ours", "node"} <= rounds[0].keys():
        return
    for grant in grants:
        ratios = [
            r["ours"][grant].wrk.rps / r["node"][grant].wrk.rps
            for r in rounds
            if r["ours"][grant].wrk.valid and r["node"][grant].wrk.valid
        ]
        if not ratios:
            print(f"ratio ours/node  {grant:<19} n/a (every round has an invalid run)")
            continue
        listed = " ".join(f"{ratio:.2f}" for ratio in ratios)
        print(
            f"ratio ours/node  {grant:<19} {listed}  median {median(ratios):.2f}, lowest {min(ratios):.2f}"
            + (f" ({len(rounds) - len(ratios)} rounds invalid)" if len(ratios) < len(rounds) else "")
        )


def round_document(results: Results) -> dict[str, object]:
    return {
        server: {
            grant: asdict(run.wrk)
            | {
                "valid": run.wrk.valid,
                "cpu_percent": {"server": run.cpu.server, "other": run.cpu.other} if run.cpu else None,
                "cpu_us_per_token": cpu_per_token(run),
            }
            for grant, run in by_grant.items()
        }
        for server, by_grant in results.items()
    }


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
