"""Load test of ``semid serve``: closed-loop clients against ``POST /recommend`` on loopback.

Starts the server twice on 127.0.0.1, with micro-batching and with ``--no-batching`` (each
request its own beam search), and for each runs ``--clients`` asyncio clients (plain HTTP/1.1 on
asyncio streams, one keep-alive connection each, so that the client takes little of the CPU it
shares with the server) for ``--duration`` seconds: every client sends a history drawn from
the run's test split (its last 20 items), waits for the answer and sends the next. Bounded in
time and in count (``--max-requests`` per mode); loopback only. Each mode is measured after
``--warmup`` seconds (5) of the same load that is not recorded (the first full-size batches
allocate the model's buffers).

Records requests per second, p50 / p90 / p99 latency, errors (non-200 or transport errors), the
mean batch size the server reported, the machine's load average and the model folder's identity.

Usage: ``python benchmarks/load_serve.py --run runs/beauty-serve [--model tiger] [--clients 50] [--duration 60]``.
Figures go to ``benchmarks/results/serve_load.json`` and ``serve_load.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from semid.core.run import MODEL_CONFIG, RunFolder
from semid.serve.process import child_server

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


async def post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes) -> tuple[int, bytes]:
    """One ``POST /recommend`` on a kept-alive HTTP/1.1 connection (a lean client: the CPU is the server's)."""
    writer.write(b"POST /recommend HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    return int(lines[0].split()[1]), await reader.readexactly(length)


async def clients(base: str, histories: list[list[int]], n: int, duration: float, max_requests: int, k: int) -> dict:
    """``n`` closed-loop clients for ``duration`` seconds; latencies of every answered request."""
    host, port = base.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors: dict[str, int] = {}
    sent = 0
    end = time.perf_counter() + duration

    async def client(i: int) -> None:
        nonlocal sent
        rng = np.random.default_rng(i)
        conn = None
        while time.perf_counter() < end and sent < max_requests:
            sent += 1
            body = json.dumps({"history": histories[rng.integers(len(histories))], "k": k}).encode()
            t0 = time.perf_counter()
            try:
                conn = conn or await asyncio.open_connection(host, port)
                status, answer = await asyncio.wait_for(post(*conn, body), timeout=30)
                key = "ok" if status == 200 and json.loads(answer)["items"] else f"HTTP {status}"
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                key, conn = type(exc).__name__, None
            if key == "ok":
                latencies.append(time.perf_counter() - t0)
            else:
                errors[key] = errors.get(key, 0) + 1
        if conn:
            conn[1].close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(n)))
    wall = time.perf_counter() - t0
    lat = np.asarray(latencies) * 1000
    return {"requests": len(lat) + sum(errors.values()), "answered": len(lat), "errors": sum(errors.values()),
            "error_kinds": errors, "wall_s": round(wall, 1), "rps": round(len(lat) / wall, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 1), "p90_ms": round(float(np.percentile(lat, 90)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1), "max_ms": round(float(lat.max()), 1)}


def measure(args: argparse.Namespace, batching: bool, histories: list[list[int]]) -> dict:
    options = ["--model", args.model, "--threads", str(args.threads), "--max-batch", str(args.max_batch),
               "--batching" if batching else "--no-batching"]
    log = Path(tempfile.gettempdir()) / f"semid-{args.out}-{'batching' if batching else 'single'}.log"
    with child_server(args.run, log, *options) as server:
        # warm-up, not recorded: the server's first batches of the full size allocate their buffers
        asyncio.run(clients(server.base, histories, args.clients, args.warmup, 100_000, args.k))
        before = httpx.get(f"{server.base}/health").json()
        load0 = os.getloadavg()
        out = asyncio.run(clients(server.base, histories, args.clients, args.duration, args.max_requests, args.k))
        after = httpx.get(f"{server.base}/health", timeout=120).json()
    out["mean_batch"] = round((after["requests"] - before["requests"]) / max(after["batches"] - before["batches"], 1), 1)
    out["loadavg_1min_before_after"] = [round(load0[0], 2), round(os.getloadavg()[0], 2)]
    out["batching"] = batching
    print(f"{'batching' if batching else 'no batching'}: {out['rps']} req/s, p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms, "
          f"{out['errors']} errors, mean batch {out['mean_batch']}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=ROOT / "runs" / "beauty-serve")
    ap.add_argument("--model", default="tiger")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--max-requests", type=int, default=100_000, help="cap on requests per mode (the loop is bounded)")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of load before the measured run (not recorded)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--out", default="serve_load", help="file stem under benchmarks/results/")
    ap.add_argument("--note", default="", help="where the run and its model come from, for the record")
    args = ap.parse_args()
    run = RunFolder(args.run)
    histories = [[int(i) for i in h[-20:]] for h in run.table("test")["history"].to_list() if h]
    model_cfg = json.loads((run.model_dir(args.model) / MODEL_CONFIG).read_text())
    metrics_file = run.model_dir(args.model) / "metrics.json"
    test = json.loads(metrics_file.read_text()).get("metrics", {}) if metrics_file.is_file() else {}
    where = args.run.resolve().relative_to(ROOT) if args.run.resolve().is_relative_to(ROOT) else args.run
    batched = measure(args, True, histories)
    single = measure(args, False, histories)
    ratio = round(batched["rps"] / max(single["rps"], 1e-9), 2)
    print(f"throughput with batching / without: {ratio}×", flush=True)
    record = {
        "what": f"{args.clients} closed-loop clients for {args.duration:g} s each against POST /recommend (k={args.k}) on 127.0.0.1, "
                f"with and without micro-batching, each after {args.warmup:g} s of the same load that is not recorded; "
                "histories: the last 20 items of test-split users",
        "run": str(where), "note": args.note, "model": args.model, "kind": model_cfg.get("kind"), "params": model_cfg.get("params"),
        "model_config": {k: model_cfg.get("config", {}).get(k) for k in ("preset", "max_epochs", "ids_folder", "d_model")},
        "training": {k: (model_cfg.get("training") or {}).get(k) for k in ("epochs", "stopped_by", "best_val_recall@10", "train_wall_s")},
        "test_metrics": {k: round(test[k], 4) for k in ("recall@10", "ndcg@10") if k in test},
        "server": {"depth_and_beam": 20, "threads": args.threads, "max_batch": args.max_batch, "device": "cpu"},
        "batching": batched, "no_batching": single, "throughput_ratio": ratio,
        "targets": {"zero_errors": batched["errors"] == 0 and single["errors"] == 0, "p99_under_500ms": batched["p99_ms"] < 500,
                    "ratio_at_least_3": ratio >= 3},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(record, indent=2) + "\n")
    rows = [("batching", batched), ("no batching", single)]
    md = [f"# `semid serve` under load: {record['what']}", "",
          f"Model: `{args.model}` ({record['kind']}, {record['params']:,} parameters, {record['model_config']}, training "
          f"{record['training']}, test {record['test_metrics']}) of `{where}`. {args.note}", "",
          f"Server: beam 20, {args.threads} torch thread(s), max batch {args.max_batch}, CPU, {os.cpu_count()} cores. {record['date']}.", "",
          "| mode | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | mean batch | load avg before → after |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    md += [f"| {name} | {r['rps']} | {r['p50_ms']} | {r['p90_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['errors']} | {r['mean_batch']} | "
           f"{r['loadavg_1min_before_after'][0]} → {r['loadavg_1min_before_after'][1]} |" for name, r in rows]
    md += ["", f"Throughput with batching / without: **{ratio}×**. Targets: {record['targets']}.", ""]
    (RESULTS / f"{args.out}.md").write_text("\n".join(md))
    print(f"→ {RESULTS / (args.out + '.json')}, {RESULTS / (args.out + '.md')}")


if __name__ == "__main__":
    main()
