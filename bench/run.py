"""Run the benchmarks and write ``docs/benchmarks.md`` and ``docs/benchmarks_growth.png``.

    .venv/bin/python -m bench.run                      # everything (what `make bench` runs)
    .venv/bin/python -m bench.run --quick              # small sizes; page in /tmp/readiness-bench-quick/
    .venv/bin/python -m bench.run --only encoding,publish
    .venv/bin/python -m bench.run --only profile --profile-size 10x

Each benchmark compares the project against a baseline measured in the same run. A local Kafka
broker is started on free loopback ports with a var dir under a fresh temp directory and stopped at
the end. Results of each section are kept in ``bench/results.json`` so that a run of some sections
(``--only``) rewrites the page with the other sections' last figures (each section shows its date).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.common import AS_OF, BENCH_CMD, bench_settings, local_broker, machine, now_iso
from readiness.settings import PROJECT_ROOT

SECTIONS = ("encoding", "security", "publish", "pipeline", "profile", "freshness", "streaming", "scale")
RESULTS_FILE = PROJECT_ROOT / "bench" / "results.json"
FULL = {"encoding_events": 10_000, "encoding_repeats": 3, "publish_events": 30_000, "publish_repeats": 3,
        "sizes": "period,year,10x,100x", "timeout": 660.0, "samples": 4, "interval": 60.0, "profile_size": "10x",
        "scale_sizes": "period,100x,1000x", "scale_timeout": 3600.0, "bursts": 3, "burst_size": 10}
QUICK = {"encoding_events": 500, "encoding_repeats": 1, "publish_events": 2_000, "publish_repeats": 1,
         "sizes": "period", "timeout": 660.0, "samples": 1, "interval": 30.0, "profile_size": "period",
         "scale_sizes": "period", "scale_timeout": 900.0, "bursts": 1, "burst_size": 3}


def log(message: str) -> None:
    print(message, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run (minutes); the page "
                        "goes to /tmp/readiness-bench-quick/ unless --out is given")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, help="where to write benchmarks.md and the plot "
                        "(default: docs/, or the work dir with --quick)")
    parser.add_argument("--sizes", help="pipeline sizes: period,year,10x,100x")
    parser.add_argument("--timeout", type=float, help="seconds allowed per pipeline run (default 660)")
    parser.add_argument("--samples", type=int, help="freshness samples")
    parser.add_argument("--interval", type=float,
                        help="freshness: the most seconds to wait, at random, before each publish")
    parser.add_argument("--bursts", type=int, help="streaming: how many due-date bursts (default 3)")
    parser.add_argument("--burst-size", type=int, help="streaming: provinces publishing at once per burst (default 10)")
    parser.add_argument("--encoding-events", type=int)
    parser.add_argument("--publish-events", type=int)
    parser.add_argument("--profile-size", help="pipeline size to profile (default 10x; period with --quick)")
    parser.add_argument("--scale-sizes", help="scale: sizes run on local[2] and on the cluster (period,100x,1000x)")
    parser.add_argument("--scale-timeout", type=float, help="scale: seconds allowed per pipeline run (default 3600)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, event logs, profiles)")
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    if unknown := sorted(set(args.only) - set(SECTIONS)):
        parser.error(f"unknown section(s) {unknown}; expected some of {list(SECTIONS)}")
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    args.encoding_repeats, args.publish_repeats = defaults["encoding_repeats"], defaults["publish_repeats"]
    return args


def command(section: str, args: argparse.Namespace) -> str:
    parts = [BENCH_CMD, "--only", section]
    if args.quick:
        parts.append("--quick")
    if section == "encoding":
        parts += ["--encoding-events", str(args.encoding_events)]
    elif section in ("publish", "security"):
        parts += ["--publish-events", str(args.publish_events)]
    elif section == "pipeline":
        parts += ["--sizes", args.sizes, "--timeout", f"{args.timeout:.0f}"]
    elif section == "profile":
        parts += ["--profile-size", args.profile_size]
    elif section == "freshness":
        parts += ["--samples", str(args.samples), "--interval", f"{args.interval:.0f}"]
    elif section == "streaming":
        parts += ["--bursts", str(args.bursts), "--burst-size", str(args.burst_size)]
    elif section == "scale":
        parts += ["--scale-sizes", args.scale_sizes, "--scale-timeout", f"{args.scale_timeout:.0f}"]
    return " ".join(parts)


def profile_section(args: argparse.Namespace, work: Path, settings) -> dict:
    """Profile the pipeline at one size; reuses the pipeline section's topic when this run filled it."""
    from bench import profiling
    from bench.common import with_topic
    from bench.pipeline import SIZES, prepare
    from readiness.contracts.producer import topic_message_count
    from readiness.dev.simulate import simulation_periods
    from readiness.domain.periods import default_calendar

    size = SIZES[args.profile_size]
    topic = with_topic(settings, f"pipeline-{size.name}")
    work_dir = work / f"pipeline-{size.name}"
    work_dir.mkdir(parents=True, exist_ok=True)
    if not topic_message_count(topic):
        log(f"  simulating and publishing {size.label} for the profiling run ...")
        prepare(size, topic, work_dir)
    periods = [p.id for p in simulation_periods(AS_OF, size.profile, default_calendar())]
    log(f"  profiling the pipeline at size {size.name} ...")
    data = profiling.run(topic, periods, work_dir, None, args.timeout if size.scale >= 100 else 2400.0,
                         scale=size.scale)
    data["size"] = size.name
    if "stage" in data:
        log(f"  slowest stage: {data['stage']} ({data['stage_seconds'][data['stage']]:.1f} s)")
    return data


def run_section(section: str, args: argparse.Namespace, work: Path, settings) -> dict:
    from bench import encoding, freshness, pipeline, publish, scale, security, streaming

    if section == "encoding":
        data = encoding.run(args.encoding_events, args.encoding_repeats)
        data["breakdown"] = encoding.breakdown(min(args.encoding_events, 2_000))
        log(f"  encode {data['median']['project_encode']:,.0f}/s vs avro {data['median']['reference_encode']:,.0f}/s "
            f"(x{data['ratio_encode']:.2f}); decode {data['median']['project_decode']:,.0f}/s vs "
            f"{data['median']['reference_decode']:,.0f}/s (x{data['ratio_decode']:.2f})")
        return data
    if section == "security":
        data = security.run(settings, work, args.publish_events // 3, args.publish_repeats)
        sig, tr = data["signing"], data["transport"]
        log(f"  sign x{sig['ratio_sign']:.2f} of encode ({sig['median']['encode_sign']:,.0f}/s), verify x"
            f"{sig['ratio_verify']:.2f} of decode; SASL_SSL x{tr['ratio_sasl_ssl']:.2f} of PLAINTEXT "
            f"({tr['median']['sasl_ssl']:,.0f}/s vs {tr['median']['plaintext']:,.0f}/s), signed x{tr['ratio_signed']:.2f}")
        return data
    if section == "publish":
        data = publish.run(settings, work, args.publish_events, args.publish_repeats)
        log(f"  publish_reports {data['median']['publish_reports']:,.0f}/s, send_raw {data['median']['send_raw']:,.0f}/s, "
            f"ProducerPerformance {data['median']['java']:,.0f}/s")
        return data
    if section == "pipeline":
        sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
        data = pipeline.run(settings, work, sizes, args.timeout, log)
        return data
    if section == "profile":
        return profile_section(args, work, settings)
    if section == "freshness":
        return freshness.run(settings, work, args.samples, args.interval, log=log)
    if section == "streaming":
        data = streaming.run(settings, work, args.bursts, args.burst_size, log=log)
        log(f"  streaming: publish -> gold commit median {data['median_to_gold_commit_s']:.1f} s, "
            f"95th percentile {data['p95_to_gold_commit_s']:.1f} s over {len(data['samples'])} samples")
        return data
    if section == "scale":
        sizes = [s.strip() for s in args.scale_sizes.split(",") if s.strip()]
        return scale.run(settings, work, sizes, args.scale_timeout, log)
    raise ValueError(section)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.chdir(PROJECT_ROOT)
    work = Path(tempfile.mkdtemp(prefix="readiness-bench-", dir="/tmp"))
    out_dir = args.out or (Path(tempfile.gettempdir()) / "readiness-bench-quick" if args.quick
                           else PROJECT_ROOT / "docs")
    log(f"benchmarks: {', '.join(args.only)}{' (quick)' if args.quick else ''}; work dir {work}")
    host = machine()
    results = {"sections": {}}
    if RESULTS_FILE.exists() and not args.quick and args.out is None:
        results = json.loads(RESULTS_FILE.read_text())
    failed = []
    settings = bench_settings(work / "var")
    needs_broker = any(s in args.only for s in ("security", "publish", "pipeline", "profile", "freshness", "streaming",
                                                   "scale"))
    try:
        from contextlib import nullcontext

        with (local_broker(settings) if needs_broker else nullcontext(settings)):
            if needs_broker:
                log(f"local Kafka broker on {settings.kafka_bootstrap} (var dir {settings.var_dir})")
            for section in SECTIONS:
                if section not in args.only:
                    continue
                log(f"== {section}")
                started, load_before = time.time(), os.getloadavg()
                try:
                    data = run_section(section, args, work, settings)
                except Exception:
                    failed.append(section)
                    log(f"  {section} failed:\n{traceback.format_exc()}")
                    continue
                measured = {
                    "measured_at": now_iso(), "duration_s": time.time() - started, "quick": args.quick,
                    "command": command(section, args), "machine": host,
                    "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()], "data": data}
                if section == "scale":
                    from bench.scale import merge_runs

                    measured = merge_runs(results["sections"].get("scale"), measured)
                results["sections"][section] = measured
    finally:
        (work / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
        if not args.quick and args.out is None:
            RESULTS_FILE.write_text(json.dumps(results, indent=1, default=str) + "\n")
        from bench import report

        page = report.write(results, out_dir)
        log(f"wrote {page} and {out_dir / report.PLOT_NAME}")
        if args.keep or failed:
            log(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
