"""Render the benchmark results as ``benchmarks.md`` with the growth plot next to it."""
from __future__ import annotations

from pathlib import Path

from bench.pipeline import SIZES

PAGE_NAME = "benchmarks.md"
PLOT_NAME = "benchmarks_growth.png"
MiB = 2**20


def _f(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def _rate(x: float) -> str:
    return f"{x:,.0f}"


def _ratio(x: float | None) -> str:
    return "n/a" if x is None else (f"{x:,.2f}x" if x < 100 else f"{x:,.0f}x")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out + [""]


def _when(section: dict) -> str:
    load = section.get("load_before"), section.get("load_after")
    cores = section.get("machine", {}).get("logical_cpus") or 1
    busy = max(load[0][0], load[1][0]) > cores
    return (f"Measured {section['measured_at']} in {section['duration_s'] / 60:.1f} min; load average "
            f"(1/5/15 min) {'/'.join(map(str, load[0]))} before, {'/'.join(map(str, load[1]))} after"
            + (" (**--quick run**)" if section.get("quick") else "") + "."
            + (f" The machine was busy with other work (load above its {cores} cores): absolute times are "
               "stretched, and ratios are noisier than on a quiet machine because the load changed while they "
               "were measured." if busy else ""))


def _machine(m: dict) -> list[str]:
    return _table(["", ""], [
        ["CPU", f"{m['cpu_model']}"],
        ["cores", f"{m['logical_cpus']} logical ({m['physical_cores']} physical), {m['affinity_cpus']} usable by this process"],
        ["memory", f"{m['memory_gb']} GiB"],
        ["OS", str(m["os"])],
        ["Python", str(m["python"])],
        ["Java", str(m["java"])],
        ["libraries", f"pyspark {m['pyspark']}, fastavro {m['fastavro']}, duckdb {m['duckdb']}"],
    ])


# -- sections -------------------------------------------------------------------------------------

def encoding_section(s: dict) -> list[str]:
    d = s["data"]
    med, rates = d["median"], d["rates"]

    def spread(key: str) -> str:
        values = rates[key]
        return f"{min(values):,.0f}-{max(values):,.0f}" if len(values) > 1 else "-"

    lines = ["## 1. Encoding", "", _when(s), "",
             f"{d['events']:,} simulated reports (`readiness.dev.simulate.simulate`, mean {d['mean_encoded_bytes']:.0f} bytes "
             f"encoded), median of {d['repeats']} rounds, project and reference alternating within each round. "
             "Both sides validate the record against the schema before writing it, write the single-object header "
             "(`C3 01` + CRC-64-AVRO fingerprint) and, on reading, check the header, look the writer schema up by "
             "fingerprint and resolve it to the reader schema. "
             f"Same bytes from both encoders: **{'yes' if d['identical_bytes'] else 'NO'}**; "
             f"same decoded records: **{'yes' if d['identical_decoded_records'] else 'NO'}**.", ""]
    lines += _table(["operation", "project (fastavro), events/s", "range", "reference `avro` 1.12.1, events/s",
                     "range", "ratio project / reference"], [
        ["encode (`readiness.contracts.encoding.encode`)", _rate(med["project_encode"]), spread("project_encode"),
         _rate(med["reference_encode"]), spread("reference_encode"), _ratio(d["ratio_encode"])],
        ["decode (`readiness.contracts.encoding.decode`)", _rate(med["project_decode"]), spread("project_decode"),
         _rate(med["reference_decode"]), spread("reference_decode"), _ratio(d["ratio_decode"])],
    ])
    if d.get("breakdown"):
        b = d["breakdown"]
        lines += ["Where an encode and a decode spend their time (each part alone, best of 3 rounds, events/s; "
                  "diagnostic, same run):", ""]
        lines += _table(["part", "events/s"], [[k, _rate(v)] for k, v in b.items()])
        lines += ["What was done about it: the earlier path validated each record with fastavro's "
                  "`validate(..., raise_errors=True)`, which builds an error object (JSON-dumping the datum) for "
                  "every union branch it tries, i.e. for every nullable field, and parsed the schemas with "
                  "`_write_hint=False`, so fastavro parsed them again on every `schemaless_writer`/"
                  "`schemaless_reader` call. `check_record` now validates with `raise_errors=False` and only "
                  "repeats with `raise_errors=True` to name the field of a record that failed, and the registry "
                  "keeps fastavro's hint. The rows marked *earlier* rebuild the old path in this run."]
        if "encode, earlier path (raise_errors=True, unhinted schema)" in b:
            gain = b["encode (project: validate + write)"] / b["encode, earlier path (raise_errors=True, unhinted schema)"]
            lines[-1] += f" Encode, project / earlier path: **{_ratio(gain)}**."
        lines += [""]
    lines += [f"Reproduce: `{s['command']}`", ""]
    return lines


def security_section(s: dict) -> list[str]:
    sig, tr = s["data"]["signing"], s["data"]["transport"]

    def spread(rates: dict, key: str) -> str:
        values = rates[key]
        return f"{min(values):,.0f}-{max(values):,.0f}" if len(values) > 1 else "-"

    lines = ["## Security: what signing and SASL_SSL cost", "", _when(s), "",
             f"Signing: {sig['events']:,} events of one province, median of {sig['repeats']} rounds, one process "
             "(Ed25519 through `cryptography`, the producer's and the ingest's own functions).", ""]
    lines += _table(["step", "events/s (median)", "range", "ratio"], [
        ["encode", _rate(sig["median"]["encode"]), spread(sig["rates"], "encode"), "1.00x"],
        ["encode + sign (what the producer does)", _rate(sig["median"]["encode_sign"]),
         spread(sig["rates"], "encode_sign"), _ratio(sig["ratio_sign"])],
        ["decode", _rate(sig["median"]["decode"]), spread(sig["rates"], "decode"), "1.00x"],
        ["verify + decode (what the ingest does)", _rate(sig["median"]["verify_decode"]),
         spread(sig["rates"], "verify_decode"), _ratio(sig["ratio_verify"])],
    ])
    lines += ["", f"Transport: the same {tr['events']:,} encoded events sent with `ReportProducer.send_raw` "
              "(`acks=all`, idempotence) to the project's SASL_SSL broker and to a PLAINTEXT broker that the "
              f"benchmark starts for this comparison only, median of {tr['repeats']} rounds.", ""]
    lines += _table(["connection", "events/s (median)", "range", "ratio to PLAINTEXT"], [
        ["PLAINTEXT (baseline broker, no authentication)", _rate(tr["median"]["plaintext"]),
         spread(tr["rates"], "plaintext"), "1.00x"],
        ["SASL_SSL (TLS + SCRAM-SHA-512), unsigned", _rate(tr["median"]["sasl_ssl"]), spread(tr["rates"], "sasl_ssl"),
         _ratio(tr["ratio_sasl_ssl"])],
        ["SASL_SSL, signed (as a province publishes)", _rate(tr["median"]["sasl_ssl_signed"]),
         spread(tr["rates"], "sasl_ssl_signed"), _ratio(tr["ratio_signed"])],
    ])
    lines += ["", f"Reproduce: `{s['command']}`", ""]
    return lines


def publish_section(s: dict) -> list[str]:
    d = s["data"]
    med, rates = d["median"], d["rates"]

    def spread(key: str) -> str:
        values = rates[key]
        return f"{min(values):,.0f}-{max(values):,.0f}" if len(values) > 1 else "-"

    java = d["java_runs"]
    lines = ["## 2. Publishing", "", _when(s), "",
             f"{d['events']:,} events per round to a {d['partitions']}-partition topic on the local broker "
             f"(single node, loopback), median of {d['repeats']} rounds; the three producers alternate within "
             f"each round. ProducerPerformance sends {d['record_size']}-byte records (the mean encoded size of "
             "the same events), `acks=all enable.idempotence=true`, its other settings at the Java client's "
             "defaults (batch.size 16 KiB, linger.ms 5, up to 5 requests in flight); its figure is its own "
             "summary line. The project's producer has `acks=all`, idempotence, `linger_ms=5` and one request in "
             "flight (kafka-python 2.2 refuses idempotence with more); it keys each event by province code, signs it "
             "with the province's key and sends it over that province's own SASL_SSL connection, so this "
             "benchmark, which plays all the provinces at once, spreads the events over one producer per "
             "province (a province's own system has one). ProducerPerformance connects as one province over "
             "SASL_SSL and does not sign.", ""]
    lines += _table(["producer", "events/s (median)", "range", "ratio to ProducerPerformance"], [
        ["`ReportProducer.publish_reports` (validate + encode + send)", _rate(med["publish_reports"]),
         spread("publish_reports"), _ratio(d["ratio_publish_reports"])],
        ["`ReportProducer.send_raw` (already-encoded bytes)", _rate(med["send_raw"]), spread("send_raw"),
         _ratio(d["ratio_send_raw"])],
        ["Kafka `ProducerPerformance` (Java client 4.0.1)", _rate(med["java"]), spread("java"), "1.00x"],
    ])
    lines += [f"ProducerPerformance reported average latency {', '.join(_f(r['avg_latency_ms']) for r in java)} ms and "
              f"max latency {', '.join(_f(r['max_latency_ms'], 0) for r in java)} ms per round; each JVM ran "
              f"{', '.join(_f(r['process_wall_s']) for r in java)} s including start-up (not in its rate).", "",
              f"Reproduce: `{s['command']}`; the Java side alone (with a broker on `<broker>` and the topic "
              "created):", "", "```bash", d["java_command"], "```", ""]
    return lines


def _size_label(r: dict) -> str:
    size = SIZES.get(r["size"])
    return r.get("label") or (size.label if size else r["size"])


def pipeline_section(s: dict, plot_name: str) -> list[str]:
    d = s["data"]
    lines = ["## 3. Pipeline: growth in time and memory", "", _when(s), "",
             "Each size runs in a fresh process (`python -m bench.pipeline_worker`): ingest every event on its "
             "own topic into a fresh lake, then validate and aggregate each period; the time is "
             "`ingest_reports` + `validate_period` + `aggregate_period` (Spark session start-up is shown "
             "apart). Peak memory is the largest summed RSS of the worker's process tree (Python driver, Spark "
             "JVM with `spark.driver.memory=2g`, Python UDF workers), sampled every 0.1 s with psutil; RSS sums "
             "count shared pages more than once. Sizes are multiples of one national period: "
             "`SimulationProfile(quarters=1)` (1 period), `quarters=4` (1 year, four validate + aggregate runs), "
             "and one quarter with `scale=10` and `scale=100` (the national set repeated under distinct unit "
             "codes).", "",
             "Baseline: the same aggregation written directly in DuckDB (`bench/duckdb_worker.py`), also in a "
             "fresh process: drop every report with a value breaking a row rule of the quality suite, keep each "
             "unit's latest revision, ratio of summed numerators and denominators per province, period and "
             "indicator, as reported and restated to the 2025 provinces. *DuckDB query* reads the simulated "
             "reports flattened to Parquet (only the query is timed); *DuckDB end to end* starts from the raw "
             "messages as published (decode with `readiness.contracts.encoding.decode`, flatten into Arrow, same query). "
             "Its rows are compared with the pipeline's `gold_indicator_values`. The baseline does less than "
             "the pipeline: no bronze/silver/quarantine tables, no Great Expectations report, no index, "
             "ranking or completeness tables, no Delta versions or idempotent writes.", ""]
    rows, res_rows, spark_rows, agreement = [], [], [], []
    for r in d["sizes"]:
        p, inp = r["pipeline"], r["input"]
        label = _size_label(r)
        if p.get("exit_code") != 0:
            why = (f"**did not finish within {p['timeout_s']:.0f} s** (stopped)" if p.get("exit_code") is None
                   else f"**failed** (exit {p['exit_code']})")
            rows.append([label, f"{inp['reports']:,}", f"{inp['value_rows']:,}", why] + ["-"] * 6)
            continue
        st = p["stage_seconds"]
        dq, de = r.get("duckdb_parquet", {}), r.get("duckdb_e2e", {})
        q = dq.get("query_s")
        e2e = (de.get("decode_flatten_s", 0) + de.get("query_s", 0)) if de.get("exit_code") == 0 else None
        rows.append([
            label, f"{inp['reports']:,}", f"{inp['value_rows']:,}",
            f"**{p['pipeline_s']:,.1f}** ({st.get('ingest', 0):,.1f} / {st.get('validate', 0):,.1f} / "
            f"{st.get('aggregate', 0):,.1f})",
            _f(p["spark_start_s"]), _f(p.get("mean_load")),
            _f(q, 2), _f(e2e, 2),
            _ratio(p["pipeline_s"] / q if q else None), _ratio(p["pipeline_s"] / e2e if e2e else None),
        ])
        cpu_ratio = p["cpu_s"] / de["cpu_s"] if p.get("cpu_s") and de.get("cpu_s") else None
        res_rows.append([
            label, f"{p['peak_rss_bytes'] / MiB:,.0f}",
            f"{dq.get('peak_rss_bytes', 0) / MiB:,.0f} / {de.get('peak_rss_bytes', 0) / MiB:,.0f}",
            _ratio(p["peak_rss_bytes"] / dq["peak_rss_bytes"] if dq.get("peak_rss_bytes") else None),
            _f(p.get("cpu_s")), f"{_f(dq.get('cpu_s'))} / {_f(de.get('cpu_s'))}", _ratio(cpu_ratio),
        ])
        for stage, part in r.get("spark", {}).items():
            spark_rows.append([label, stage, _f(part["wall_s"]), str(part["spark_jobs"]), _f(part["jobs_running_s"]),
                               _f(part["driver_only_s"])])
        if r.get("agreement"):
            a = r["agreement"]
            agreement.append(f"{label}: {a['matching_keys']:,} of {a['gold_rows']:,} gold rows have a baseline row "
                             f"({a['only_in_gold']} only in gold, {a['only_in_baseline']} only in the baseline), "
                             f"{a.get('rows_differing', 'n/a')} differ in value (largest relative difference "
                             f"{a['max_relative_difference']:.1e})")
    growth = growth_sentence(d["sizes"])
    if growth:
        lines += [growth, ""]
    lines += ["Time (the load column is the mean 1-minute load average while the pipeline worker ran; on 2 cores "
              "anything above 2 means the run shared the CPU with other work):", ""]
    lines += _table(["size", "reports", "value rows", "pipeline s (ingest / validate / aggregate)",
                     "Spark start s", "load during run", "DuckDB query s", "DuckDB end to end s",
                     "time ratio pipeline / DuckDB query", "time ratio pipeline / DuckDB e2e"], rows)
    if res_rows:
        lines += ["Memory and CPU (whole worker processes, start-up included; CPU time is user + system over the "
                  "process tree and stretches much less than wall time under contention):", ""]
        lines += _table(["size", "pipeline peak RSS MiB", "DuckDB peak RSS MiB (query / e2e)",
                         "memory ratio pipeline / DuckDB query", "pipeline CPU s", "DuckDB CPU s (query / e2e)",
                         "CPU ratio pipeline / DuckDB e2e"], res_rows)
    if agreement:
        lines += ["Same answer: " + "; ".join(agreement) + ".", ""]
    lines += [f"![Pipeline growth: time and peak memory against input size]({plot_name})", ""]
    if spark_rows:
        lines += ["Spark's share of each stage, from the session's event log (`spark.eventLog.enabled`): the "
                  "time at least one Spark job was running, and the rest, when only the driver was working "
                  "(query planning and analysis, Delta log reads and commits, py4j round trips, Python):", ""]
        lines += _table(["size", "stage", "wall s", "Spark jobs", "a job running s", "driver only s"], spark_rows)
    lines += [f"Reproduce: `{s['command']}`. One size's worker and baseline can be rerun by hand from the "
              "config files the run leaves in its work dir with `--keep`: `.venv/bin/python -m "
              "bench.pipeline_worker <work>/pipeline-<size>/pipeline-config.json` and `.venv/bin/python -m "
              "bench.duckdb_worker <work>/pipeline-<size>/duckdb-parquet-config.json`.", ""]
    return lines


def growth_sentence(sizes: list[dict]) -> str:
    done = [r for r in sizes if r["pipeline"].get("exit_code") == 0]
    base = next((r for r in done if r["size"] == "period"), None)
    if base is None or len(done) < 2:
        return ""
    parts = []
    for r in done:
        if r is base:
            continue
        rows = r["input"]["value_rows"] / base["input"]["value_rows"]
        t = r["pipeline"]["pipeline_s"] / base["pipeline"]["pipeline_s"]
        m = r["pipeline"]["peak_rss_bytes"] / base["pipeline"]["peak_rss_bytes"]
        q = (r.get("duckdb_parquet", {}).get("query_s") or 0) / (base.get("duckdb_parquet", {}).get("query_s") or 1)
        cpu = (f", {r['pipeline']['cpu_s'] / base['pipeline']['cpu_s']:,.1f}x its CPU time"
               if r["pipeline"].get("cpu_s") and base["pipeline"].get("cpu_s") else "")
        parts.append(f"{_size_label(r)}: {rows:,.1f}x the rows, {t:,.1f}x the pipeline time{cpu}, {m:,.2f}x its "
                     f"peak memory ({q:,.1f}x the DuckDB query time)")
    return "Growth against one national period: " + "; ".join(parts) + "."


def profile_lines(p: dict, section: dict | None = None) -> list[str]:
    if "stage" not in p:
        return [f"Profiling run failed: {p.get('error')}.", ""]
    stage = p["stage"]
    spark = p["spark"].get(stage, {})
    py = p["python"]
    lines = [f"### Where the time goes: `{stage}`, the slowest stage", ""]
    if section is not None:
        lines += [_when(section), ""]
    lines += [f"A separate profiling run at size {p['size']} (fresh process; cProfile around each stage; every "
             "Spark job named after the line of `readiness/` that triggered it, by setting Spark's "
             "`callSite.short` before each py4j call, which costs a little time, so these figures are not the "
             "timed ones). Stage times in that run: "
             + ", ".join(f"{k} {v:,.1f} s" for k, v in p["stage_seconds"].items()) + ".", ""]
    if spark:
        top = list(spark["by_site"].items())[:3]
        lines += [f"**In short:** `{stage}` took {spark['wall_s']:,.1f} s in this run. Spark jobs were running for "
                  f"{spark['jobs_running_s']:,.1f} s ({spark['spark_jobs']} jobs; the most time in "
                  + ", ".join(f"`{site}` ({e['jobs']} jobs, {e['job_s']:,.1f} s)" for site, e in top)
                  + f"); for {spark['driver_only_s']:,.1f} s no job was running and only the driver worked (query "
                  f"analysis and planning, Delta log reads and commits, py4j round trips). The driver's own Python "
                  f"took {py['python_s']:,.1f} s of the stage (Great Expectations' code {py['gx_self_total_s']:,.1f} s); "
                  "the rest it spent waiting for the JVM.", ""]
        lines += [f"Spark: {spark['spark_jobs']} jobs; at least one job running for {spark['jobs_running_s']:,.1f} s "
                  f"of {spark['wall_s']:,.1f} s, the driver alone for {spark['driver_only_s']:,.1f} s. Jobs by the "
                  "code that triggered them (job time clipped to the stage; task time summed over tasks; "
                  "overlapping jobs make the job column add up to more than the running time):", ""]
        site_rows = [[f"`{site}`", str(e["jobs"]), _f(e["job_s"]), _f(e["task_s"]), _f(e["python_worker_init_s"])]
                     for site, e in list(spark["by_site"].items())[:12]]
        lines += _table(["triggered by", "jobs", "job s", "task s", "Python worker start s"], site_rows)
    calls = f" over {py['py4j_calls']:,} py4j round trips" if py.get("py4j_calls") else ""
    lines += [f"Driver Python (cProfile of the stage, {py['profiled_s']:,.1f} s, cProfile's own overhead included): "
              f"{py['waiting_on_jvm_s']:,.1f} s blocked on answers from the JVM{calls}, {py['python_s']:,.1f} s in "
              f"Python itself, of which {py['gx_self_total_s']:,.1f} s in Great Expectations' own code. Project "
              "functions by cumulative time (a function's time includes the Spark jobs it waited for):", ""]
    lines += _table(["function", "calls", "cumulative s", "self s"],
                    [[f"`{e['function']}`", str(e["calls"]), _f(e["cumulative_s"]), _f(e["self_s"], 2)]
                     for e in py["project_functions"]])
    if p.get("jvm_calls_by_site"):
        lines += [f"Python -> JVM calls (py4j) made by the stage: {p['jvm_calls']:,}, by the line of `readiness/` "
                  "(and Great Expectations function) that made them; each is a socket round trip:", ""]
        lines += _table(["made by", "JVM calls"], [[f"`{k}`", f"{v:,}"] for k, v in p["jvm_calls_by_site"].items()])
    if py.get("top_self_time"):
        lines += ["The driver's Python self time, largest first (excluding the wait for the JVM):", ""]
        lines += _table(["function", "calls", "self s"], [[f"`{e['function']}`", f"{e['calls']:,}", _f(e["self_s"], 2)]
                                                          for e in py["top_self_time"]])
    if section is not None:
        lines += [f"Reproduce: `{section['command']}` (cProfile files and the Spark event log stay in the work dir "
                  "with `--keep`: `<work>/pipeline-<size>/profile-profile/<stage>.prof`, "
                  "`<work>/pipeline-<size>/profile-eventlog/`).", ""]
    return lines


def freshness_section(s: dict) -> list[str]:
    d = s["data"]
    lines = ["## 4. Freshness", "", _when(s), ""]
    if d.get("mode") != "scheduled":
        return lines + ["These figures predate the scheduled-mode benchmark (they timed a hand-written loop); "
                        "rerun `.venv/bin/python -m bench.run --only freshness` for the scheduled mode.", ""]
    b = d["baseline"]
    lines += [
        "Seconds from publishing a report to its province's row changing in the gold tables, **in the scheduled "
        "mode**: the real Airflow services (`readiness.dev.airflow.AirflowServices`: api-server, scheduler "
        "with the LocalExecutor, dag-processor; SQLite metadata database in the run's work dir). "
        f"`readiness_ingest` runs on the cron **`READINESS_INGEST_CRON=\"{d['ingest_cron']}\"`** (every minute; "
        "the deployment default is every 5 minutes, where a publish can wait up to 5 minutes for the next tick), and "
        "its asset event `bronze_report_events` triggers `readiness_refresh_changed` (validate + aggregate of "
        f"the changed periods). The other DAGs ({', '.join(f'`{x}`' for x in d.get('paused', []))}) are paused. "
        "Each task runs in its own process and starts its own Spark session, as deployed.",
        "",
        f"The topic holds one national period ({d['period']}, {d['reports']:,} reports). After the cold start "
        f"(services up in {_f(d['airflow_start_s'], 0)} s, DAGs loaded at {_f(d['dags_loaded_s'], 0)} s; the "
        f"schedule's first ingest + refresh published gold {_f(d['cold']['to_refresh_end_s'], 0)} s after the "
        f"start), each sample waits a random time in [0, {d['interval_s']:.0f}) s (so the publish lands at a "
        "random point of the cron minute), publishes a corrected revision of one unit's report with "
        "`ReportProducer.publish_reports` (its province's `computers_per_100_staff` numerator sum moves by one), "
        "and finds the first Delta version of `gold_indicator_values` (basis as_reported) that shows the new "
        "value. The times come from the Delta log (commit timestamp of that version) and from the Airflow REST "
        "API (the refresh run spanning that commit, the asset event that triggered it, the ingest run that "
        "emitted the event), not from when the benchmark noticed.",
        ""]
    rows = []
    for r in d["samples"]:
        rows.append([str(r["sample"] + 1), r["province"], _f(r["to_gold_commit_s"]), _f(r["to_refresh_end_s"]),
                     f"{r['ingest_tick_s']:+.1f} / {r['ingest_start_s']:+.1f}", _f(r["ingest_run_s"]),
                     _f(r["ingest_to_event_s"]), _f(r["trigger_gap_s"]), _f(r["refresh_to_commit_s"]),
                     _f(r["refresh_run_s"])])
    lines += _table(["sample", "province", "publish -> gold commit s", "publish -> refresh run end s",
                     "ingest run: cron tick / start, s after publish", "ingest run s", "ingest start -> asset event s",
                     "asset event -> refresh start s", "refresh start -> gold commit s", "refresh run s"], rows)
    m = {k[len("median_"):]: v for k, v in d.items() if k.startswith("median_")}
    lines += [
        f"Publish -> gold commit: median **{_f(d['median_to_gold_commit_s'])} s** (min "
        f"{_f(d['min_to_gold_commit_s'])}, max {_f(d['max_to_gold_commit_s'])}, {len(d['samples'])} "
        f"sample{'s' if len(d['samples']) != 1 else ''}); publish -> end of the refresh run: median "
        f"{_f(m['to_refresh_end_s'])} s (after the commit the run writes the other gold tables and its teardown "
        f"records the run: median {_f(m['commit_to_refresh_end_s'])} s). Where the seconds go (medians; per "
        "sample the first four add up to publish -> gold commit): waiting for the ingest run to start "
        f"{_f(m['ingest_start_s'])} s (its cron tick "
        f"{'n/a' if m['ingest_tick_s'] is None else format(m['ingest_tick_s'], '+.1f')} s from the publish), "
        f"ingest run start -> its asset event {_f(m['ingest_to_event_s'])} s (whole ingest run "
        f"{_f(m['ingest_run_s'])} s), asset event -> refresh run start {_f(m['trigger_gap_s'])} s, refresh run "
        f"start -> gold commit {_f(m['refresh_to_commit_s'])} s (whole refresh run {_f(m['refresh_run_s'])} s). "
        f"Ingest runs fire every minute, most with nothing to read ({d.get('ingest_runs', 'n/a')} ingest runs, "
        f"{d.get('refresh_runs', 'n/a')} refresh runs in all, cold start included), each starting a Spark "
        "session that shares the cores with the run being measured; with `max_active_runs=1` a tick whose "
        "predecessor is still running is skipped or starts late.",
        ""]
    early = [r for r in d["samples"] if r["ingest_start_s"] < 0]
    if early:
        lines += [f"In {len(early)} of {len(d['samples'])} samples the ingest run that picked the correction up had "
                  "started before the publish (negative wait): a run reads Kafka only once its Spark session is "
                  "up, some seconds after it starts, so a publish in that window is still read by it.", ""]
    lines += [
        "Baseline, same run: the pipeline's own work without a scheduler. After the samples the ingest DAG is "
        "paused and Airflow stopped; one more correction (province "
        f"{b['province']}) is published and the benchmark process at once runs `ingest_reports` + "
        f"`validate_period` + `aggregate_period` of {d['period']} directly on the same lake and checkpoint "
        f"(events read: {b['events_in']}). Publish -> commit of `gold_indicator_values`: "
        f"**{_f(b['to_gold_commit_s'])} s**, the same end point as the scheduled figure; the three calls take "
        f"{_f(b['pipeline_s'])} s in all (ingest {_f(b['ingest_s'])}, validate {_f(b['validate_s'])}, aggregate "
        f"{_f(b['aggregate_s'])}, which writes the other gold tables after that commit). Its Spark session was "
        f"already running: starting it took {_f(d.get('spark_start_s'))} s, which is excluded (every Airflow "
        "task pays its own session start, inside the scheduled figures), and nothing else of the pipeline ran "
        "beside it. It is a single measurement: the floor a publish waits with no cron tick, no task processes, "
        "no Spark starts and no asset trigger. Ratio median scheduled publish -> gold commit / baseline: "
        f"**{_ratio(d.get('ratio'))}**.",
        "",
        f"Reproduce: `{s['command']}` (service and task logs stay in the work dir with `--keep`: "
        "`<work>/freshness/var/airflow/logs/`).", ""]
    return lines


def streaming_section(s: dict, scheduled: dict | None) -> list[str]:
    """Freshness in the streaming mode, against the scheduled mode when the same run measured it."""
    d = s["data"]
    samples = d["samples"]
    rows = []
    for b in range(d["bursts"]):
        times = [x["to_gold_commit_s"] for x in samples if x["burst"] == b]
        versions = sorted({x["gold_version"] for x in samples if x["burst"] == b})
        if times:
            rows.append([str(b + 1), str(len(times)), _f(min(times)), _f(sorted(times)[len(times) // 2]),
                         _f(max(times)), ", ".join(map(str, versions))])
    lines = ["## 4b. Freshness in the streaming mode", "", _when(s), "",
             "`readiness stream` runs as its own process (one Spark session for its life, a processing-time "
             f"trigger every {d['trigger_s']:g} s). The topic holds one national period ({d['period']}, "
             f"{d['reports']:,} reports): the service was running {_f(d['start_s'])} s after its start and its first "
             f"batch had the period in gold {_f(d['cold_s'])} s after the start (that batch took "
             f"{_f(d['cold_batch_s'])} s). Then {d['bursts']} due-date bursts, each after a random wait in "
             f"[0, {d['interval_s']:.0f}) s: {d['burst_size']} provinces publish a correction each at the same moment "
             "(one producer, every send queued before any is awaited), each moving its province's "
             "`computers_per_100_staff` numerator sum. A sample runs from just before its burst was sent to the "
             "commit timestamp (Delta log) of the first version of `gold_indicator_values` that shows its new "
             "value; the versions are read with delta-rs, so no second Spark runs beside the service.", "",
             *_table(["burst", "samples", "min s", "median s", "max s", "gold versions"], rows),
             f"Publish -> gold commit over {len(samples)} samples: median **{_f(d['median_to_gold_commit_s'])} s**, "
             f"95th percentile **{_f(d['p95_to_gold_commit_s'])} s** (min {_f(d['min_to_gold_commit_s'])}, max "
             f"{_f(d['max_to_gold_commit_s'])}); targets: median <= 15 s, 95th percentile <= 30 s. SIGTERM stopped "
             f"the service in {_f(d.get('stop_s'))} s (exit {d.get('exit_code')})."]
    if scheduled and scheduled.get("mode") == "scheduled" and scheduled.get("median_to_gold_commit_s"):
        lines[-1] += (f" The scheduled mode in the same run (section 4): median "
                      f"{_f(scheduled['median_to_gold_commit_s'])} s, streaming / scheduled "
                      f"**{_ratio(d['median_to_gold_commit_s'] / scheduled['median_to_gold_commit_s'])}**.")
    else:
        lines[-1] += " The scheduled mode was not measured in this run (add `freshness` to `--only`)."
    batches = d.get("batches") or []
    if batches:
        busy = [b for b in batches if b["events_in"]]
        lines[-1] += (f" The service ran {len(busy)} batches with events (median "
                      f"{_f(sorted(b['duration_s'] for b in busy)[len(busy) // 2])} s each, bronze to gold and the "
                      "run's row).")
    return lines + ["", f"Reproduce: `{s['command']}` (the service's log stays in the work dir with `--keep`: "
                    "`<work>/streaming/stream.log`).", ""]


# -- plot -----------------------------------------------------------------------------------------

def _run_cells(run: dict) -> list[str]:
    if run.get("exit_code") != 0:
        what = "stopped" if run.get("exit_code") is None else f"failed ({run.get('exit_code')})"
        return [f"> {run['timeout_s']:.0f} ({what})" if run.get("exit_code") is None else what, "-", "-"]
    return [f"**{_f(run['pipeline_s'])}** ({_f(run['spark_start_s'])})", _f(run["total_peak_rss_bytes"] / MiB, 0),
            _f(run["cpu_s"], 0)]


def scale_section(s: dict) -> list[str]:
    """The pipeline on local[2] against the two-worker standalone cluster, size by size."""
    d = s["data"]
    c = d["cluster"]
    rows = []
    for r in d["sizes"]:
        ratio = _ratio(r.get("ratio_cluster_local")) if "ratio_cluster_local" in r else "-"
        same = {True: "yes", False: "**no**"}.get(r.get("same_gold"), "-")
        rows.append([r["label"], f"{r['input']['reports']:,}", *_run_cells(r["local"]), *_run_cells(r["cluster"]),
                     ratio, same, f"{r.get('measured_at', s['measured_at'])[:10]} (load "
                     f"{(r.get('load_before') or s['load_before'])[0]}/{(r.get('load_after') or s['load_after'])[0]})"])
    return ["## Scale: local[2] against the two-worker cluster", "", _when(s), "",
            "The pipeline (ingest, validate, aggregate; `bench.pipeline_worker` in a fresh process, a fresh lake each) "
            "on `local[2]`, the baseline, and against a Spark standalone master with "
            f"{c['spark_workers']} workers of {c['spark_worker_cores']} core and {c['spark_worker_memory']} each "
            f"(executors of {c['spark_executor_memory']}, at most {c['spark_cores_max']} cores per application, "
            f"driver {c['spark_driver_memory']}) started in the same run through pyspark's `spark-class` on loopback. "
            "Each size is published once and read by both runs. Time: seconds of ingest + validate + aggregate "
            "(Spark session start in brackets). Memory: the peak summed RSS of the driver's process tree, plus on the "
            "cluster the two Worker JVMs with their executors and Python workers, sampled at the same time.", "",
            *_table(["size", "reports", "local[2], s", "local peak MiB", "local CPU s", "cluster, s",
                     "cluster peak MiB", "cluster CPU s", "cluster / local", "same gold values",
                     "measured (1-min load before/after)"], rows),
            *(["The sizes were measured in different runs (the largest alone takes hours); local[2] and the "
               "cluster of one size always in the same run.", ""]
              if len({r.get("measured_at", s["measured_at"]) for r in d["sizes"]}) > 1 else []),
            f"Cross-over: {d['crossover']}.", "",
            *(["Not measured in this run: " + ", ".join(skipped) + " (`--scale-sizes` chooses the sizes).", ""]
              if (skipped := [n for n in ("period", "100x", "1000x") if n not in {r["size"] for r in d["sizes"]}])
              else []),
            f"Reproduce: `{s['command']}`.", ""]


def plot(pipeline: dict, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = sorted((r for r in pipeline["sizes"] if r["pipeline"].get("exit_code") == 0),
                  key=lambda r: r["input"]["value_rows"])
    if not done:
        return False
    x = [r["input"]["value_rows"] for r in done]
    with_cpu = all(r["pipeline"].get("cpu_s") for r in done)
    fig, axes = plt.subplots(1, 3 if with_cpu else 2, figsize=(16 if with_cpu else 11, 4.4))
    ax_t, ax_m = axes[0], axes[1]
    def baseline(ax, source: str, value, label: str, marker: str, usable=lambda run: run.get("exit_code") == 0) -> None:
        """One DuckDB worker's figure per size, for the sizes where that worker gave one."""
        points = [(r["input"]["value_rows"], value(r[source])) for r in done if usable(r.get(source, {}))]
        if points:
            ax.plot(*zip(*points), marker, label=label)

    ax_t.plot(x, [r["pipeline"]["pipeline_s"] for r in done], "o-", label="pipeline (ingest+validate+aggregate)")
    baseline(ax_t, "duckdb_parquet", lambda d: d["query_s"], "DuckDB query (Parquet)", "s--")
    baseline(ax_t, "duckdb_e2e", lambda d: d["decode_flatten_s"] + d["query_s"],
             "DuckDB end to end (decode+flatten+query)", "^--")
    ax_m.plot(x, [r["pipeline"]["peak_rss_bytes"] / MiB for r in done], "o-", label="pipeline process tree")
    baseline(ax_m, "duckdb_parquet", lambda d: d["peak_rss_bytes"] / MiB, "DuckDB query (Parquet)", "s--")
    baseline(ax_m, "duckdb_e2e", lambda d: d["peak_rss_bytes"] / MiB, "DuckDB end to end", "^--")
    for r in done:
        ax_t.annotate(r["size"], (r["input"]["value_rows"], r["pipeline"]["pipeline_s"]),
                      textcoords="offset points", xytext=(4, 6), fontsize=8)
    panels = [(ax_t, "wall time", "seconds"), (ax_m, "peak memory (summed RSS)", "MiB")]
    if with_cpu:
        ax_c = axes[2]
        ax_c.plot(x, [r["pipeline"]["cpu_s"] for r in done], "o-", label="pipeline process tree")
        def has_cpu(run: dict) -> bool:
            return bool(run.get("cpu_s"))

        baseline(ax_c, "duckdb_parquet", lambda d: d["cpu_s"], "DuckDB query worker", "s--", has_cpu)
        baseline(ax_c, "duckdb_e2e", lambda d: d["cpu_s"], "DuckDB end to end worker", "^--", has_cpu)
        panels.append((ax_c, "CPU time, whole worker (user+system)", "CPU seconds"))
    for ax, title, unit in panels:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("input size: indicator-value rows")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Pipeline growth against the DuckDB baseline (each point a fresh process)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# -- page -----------------------------------------------------------------------------------------

def write(results: dict, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = results.get("sections", {})
    latest = max(sections.values(), key=lambda s: s["measured_at"]) if sections else None
    lines = ["# Benchmarks", "",
             "Written by `make bench` (`.venv/bin/python -m bench.run`); do not edit by hand. Every speed figure "
             "is a ratio against a baseline measured in the same run on the same machine: absolute times drift "
             "on a shared machine (note the load averages), ratios much less. Each section says when it was "
             "measured and the command that reproduces it.", ""]
    if latest:
        lines += [f"Machine (latest run, {latest['measured_at']}):", ""] + _machine(latest["machine"])
        machines = {s["machine"]["cpu_model"] for s in sections.values()}
        if len(machines) > 1:
            lines += [f"Note: the sections were measured on different CPUs ({', '.join(sorted(machines))}).", ""]
    summary = summary_lines(sections)
    if summary:
        lines += ["## Summary", ""] + summary
    if "encoding" in sections:
        lines += encoding_section(sections["encoding"])
    if "security" in sections:
        lines += security_section(sections["security"])
    if "publish" in sections:
        lines += publish_section(sections["publish"])
    if "pipeline" in sections:
        if plot(sections["pipeline"]["data"], out_dir / PLOT_NAME):
            pass
        lines += pipeline_section(sections["pipeline"], PLOT_NAME)
    if "profile" in sections:
        lines += profile_lines(sections["profile"]["data"], sections["profile"])
    elif sections.get("pipeline", {}).get("data", {}).get("profile"):
        lines += profile_lines(sections["pipeline"]["data"]["profile"])
    if "freshness" in sections:
        lines += freshness_section(sections["freshness"])
    if "streaming" in sections:
        lines += streaming_section(sections["streaming"], sections.get("freshness", {}).get("data")
                                   if sections.get("freshness", {}).get("measured_at", "")[:10]
                                   == sections["streaming"]["measured_at"][:10] else None)
    if "scale" in sections:
        lines += scale_section(sections["scale"])
    full = [x for x in sections.values() if not x.get("quick")]
    took = (f" (the last full run took {sum(x['duration_s'] for x in full) / 60:.0f} min)"
            if len(full) == len(sections) >= 4 else "")
    lines += ["## Running the benchmarks", "",
              "```bash", f"make bench                                   # everything, full sizes{took}",
              ".venv/bin/python -m bench.run --quick        # small sizes, page in /tmp/readiness-bench-quick/",
              ".venv/bin/python -m bench.run --only encoding,publish",
              ".venv/bin/python -m bench.run --only pipeline,profile --sizes period,10x", "```", "",
              "The run starts its own Kafka broker on free loopback ports with a var dir under "
              "`/tmp/readiness-bench-*` and stops it at the end; `--keep` keeps that directory (worker logs, "
              "Spark event logs, cProfile files). Raw figures of the last run of each section are in "
              "`bench/results.json`.", ""]
    page = out_dir / PAGE_NAME
    page.write_text("\n".join(lines))
    return page


def summary_lines(sections: dict) -> list[str]:
    rows = []
    if "encoding" in sections:
        d = sections["encoding"]["data"]
        rows.append(["encode, events/s", _rate(d["median"]["project_encode"]), "`avro` 1.12.1",
                     _rate(d["median"]["reference_encode"]), _ratio(d["ratio_encode"])])
        rows.append(["decode, events/s", _rate(d["median"]["project_decode"]), "`avro` 1.12.1",
                     _rate(d["median"]["reference_decode"]), _ratio(d["ratio_decode"])])
    if "publish" in sections:
        d = sections["publish"]["data"]
        rows.append(["publish_reports, events/s", _rate(d["median"]["publish_reports"]), "Kafka ProducerPerformance",
                     _rate(d["median"]["java"]), _ratio(d["ratio_publish_reports"])])
    if "pipeline" in sections:
        for r in sections["pipeline"]["data"]["sizes"]:
            p = r["pipeline"]
            q = r.get("duckdb_parquet", {}).get("query_s")
            if p.get("exit_code") == 0 and q:
                rows.append([f"pipeline, {_size_label(r)}, s", _f(p["pipeline_s"]), "DuckDB query", _f(q, 2),
                             _ratio(p["pipeline_s"] / q)])
            elif p.get("exit_code") is None:
                rows.append([f"pipeline, {_size_label(r)}, s", f"> {p['timeout_s']:.0f} (stopped)", "DuckDB query",
                             "-", "-"])
    if "freshness" in sections:
        d = sections["freshness"]["data"]
        if d.get("mode") == "scheduled" and d.get("median_to_gold_commit_s") and d.get("baseline_s"):
            cron = "1-min" if d.get("ingest_cron") == "* * * * *" else f"`{d.get('ingest_cron')}`"
            rows.append([f"freshness, publish -> gold, s (scheduled, {cron} ingest cron)",
                         _f(d["median_to_gold_commit_s"]), "direct ingest + validate + aggregate (no scheduler), publish -> gold",
                         _f(d["baseline_s"]), _ratio(d["median_to_gold_commit_s"] / d["baseline_s"])])
    if "streaming" in sections:
        d = sections["streaming"]["data"]
        scheduled = sections.get("freshness", {}).get("data", {})
        if d.get("median_to_gold_commit_s") and scheduled.get("median_to_gold_commit_s"):
            rows.append(["freshness, publish -> gold, s (streaming, median)", _f(d["median_to_gold_commit_s"]),
                         "the scheduled mode, median", _f(scheduled["median_to_gold_commit_s"]),
                         _ratio(d["median_to_gold_commit_s"] / scheduled["median_to_gold_commit_s"])])
    if not rows:
        return []
    return _table(["measure", "project", "baseline", "baseline figure", "ratio project / baseline"], rows)
