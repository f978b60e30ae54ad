#!/usr/bin/env /usr/bin/python3
"""Scraping benchmark (issue 20): PAGES pages from a site that answers each
after DELAY s (examples/scrape/scrape.py's, on a LAN host made here as root:
the same path to the site for gust's sandboxes and for the peers), fetched by
  gust       FunctionExecutor.map(fetch, urls, network=True): one task per
             page, the engine choosing the width (docs/MAP.md, "Width")
  gust-batch the article's pattern: map(scrape_batch, batches of BATCH pages)
  threads    concurrent.futures.ThreadPoolExecutor(WIDTH).map(fetch, urls)
  processes  multiprocessing.Pool(WIDTH).map(fetch, urls)
in turns, RUNS rounds; prints min/median/max wall seconds of each with the
machine and its load. The engine is started here (build/bin, or $GUST_BIN),
with its default limits. The gust rounds start on a warm engine (a small map
first): what is measured is a scrape, not the engine's start.

    /usr/bin/python3 bench/scrape/bench_scrape.py [--pages 1000] [--delay 0.1]
        [--width 100] [--runs 3] [--out bench/out/scrape.json]
"""
import argparse
import concurrent.futures as cf
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "scrape"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import common  # noqa: E402 -- needs the path set above
import scrape  # noqa: E402 -- needs the path set above


def fetch(url):
    import urllib.request
    with urllib.request.urlopen(url, timeout=60) as page:
        return len(page.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--delay", type=float, default=0.1)
    ap.add_argument("--width", type=int, default=100, help="threads / processes of the peers")
    ap.add_argument("--batch", type=int, default=10, help="pages per task of gust-batch")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import cloudpickle
    import gust
    cloudpickle.register_pickle_by_value(scrape)
    times: dict = {"gust": [], "gust-batch": [], "threads": [], "processes": []}
    loads = []
    with scrape.open_site(args.delay) as site_url, \
            common.Engine(tempfile.mkdtemp(prefix="gust-bench-scrape-")) as engine:
        urls = ["%s/paper/%d" % (site_url, i) for i in range(args.pages)]
        batches = scrape.batches_of(site_url, args.pages, args.batch)
        pwex = gust.FunctionExecutor(url=engine.url, network=True)
        pwex.get_result(pwex.map(fetch, urls[:20]))  # warm: the engine has run a map

        def run_gust():
            return pwex.get_result(pwex.map(fetch, urls))

        def run_gust_batch():
            return pwex.get_result(pwex.map(scrape.scrape_batch, batches))

        def run_threads():
            with cf.ThreadPoolExecutor(args.width) as pool:
                return list(pool.map(fetch, urls))

        def run_processes():
            with multiprocessing.Pool(args.width) as pool:
                return pool.map(fetch, urls)

        runners = {"gust": run_gust, "gust-batch": run_gust_batch, "threads": run_threads,
                   "processes": run_processes}
        for r in range(args.runs):
            for name, fn in runners.items():
                loads.append(os.getloadavg()[0])
                t0 = time.perf_counter()
                out = fn()
                times[name].append(time.perf_counter() - t0)
                assert len(out) == (len(batches) if name == "gust-batch" else args.pages)
                print("run %d %-10s %.2f s" % (r + 1, name, times[name][-1]), flush=True)
    print("\n%s; load average (1 min) %.1f-%.1f during the runs" % (
        common.machine(), min(loads), max(loads)))
    print("%d pages, %.0f ms each; peers %d wide; gust-batch %d pages a task"
          % (args.pages, args.delay * 1000, args.width, args.batch))
    summary = {}
    for name, ts in times.items():
        summary[name] = {"min": min(ts), "median": statistics.median(ts), "max": max(ts)}
        print("%-10s min %.2f  median %.2f  max %.2f s" % (name, min(ts), statistics.median(ts),
                                                           max(ts)))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "machine": common.machine(), "loads": loads,
                       "times": times, "summary": summary}, f, indent=1)


if __name__ == "__main__":
    main()
