#!/usr/bin/env /usr/bin/python3
"""The article's scraping example (its "scrape_batch" pattern) on gust.

There is no internet on these machines, so the "conference site" is an HTTP
server this script starts: /paper/N answers a small page holding paper N's
abstract after DELAY seconds (a remote site's latency). As root it runs on a
"LAN host" made here (lan.py: a network namespace behind a veth pair), since
networked sandboxes may not reach the host's own services; otherwise (the
engine is then rootless too) on 127.0.0.1. Papers travel in
batches, one task per batch, as in the article: one page is quick to fetch,
so a task per page would spend more in per-task overhead than in waiting.

The sandboxes need the network to reach the site: map(..., network=True).
Without it each task fails with the error and a note naming that option
(docs/MAP.md, "Network").

    /usr/bin/python3 examples/scrape/scrape.py [--papers 200] [--batch 10]
        [--delay 0.1] [--url http://127.0.0.1:7799]
"""
import argparse
import contextlib
import http.server
import json
import os
import re
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, HERE)
from lan import LanHost  # noqa: E402 -- needs the path set above


class Site(http.server.ThreadingHTTPServer):
    """The local "conference site": GET /paper/N -> an HTML page with paper
    N's abstract, answered after `delay` seconds. Threaded: many scrapers at
    once each wait their own delay, as on a real site."""

    daemon_threads = True
    request_queue_size = 1024  # a wide map connects all at once

    def __init__(self, delay, host="127.0.0.1", port=0):
        self.delay = delay
        super().__init__((host, port), _PaperPage)
        threading.Thread(target=self.serve_forever, name="site", daemon=True).start()

    @property
    def url(self):
        return "http://%s:%d" % self.server_address[:2]

    def close(self):
        self.shutdown()
        self.server_close()


class _PaperPage(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):  # noqa: N802 -- http.server's name
        if self.path != "/ready":
            time.sleep(self.server.delay)
        n = self.path.rsplit("/", 1)[-1]
        body = ("<html><h1>Paper %s</h1><p class=abstract>We study problem %s and "
                "find it parallel.</p></html>" % (n, n)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


SITE_PORT = 8080


@contextlib.contextmanager
def open_site(delay):
    """The site's base URL while it runs: on a LAN host when this process may
    make one (root), else on 127.0.0.1."""
    if not LanHost.available():
        site = Site(delay)
        try:
            yield site.url
        finally:
            site.close()
        return
    command = [sys.executable, os.path.abspath(__file__), "--serve", "{addr}",
               "--delay", str(delay)]
    with LanHost(command) as host:
        url = "http://%s:%d" % (host.addr, SITE_PORT)
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/ready", timeout=1).read()
                break
            except OSError:
                if host.proc.poll() is not None:
                    raise RuntimeError("the site on the LAN host exited")
                time.sleep(0.025)
        yield url


def scrape_abstract_for_one_paper(paper):
    with urllib.request.urlopen(paper["url"], timeout=30) as page:
        html = page.read().decode()
    return re.search(r"<p class=abstract>(.*?)</p>", html).group(1)


def scrape_batch(batch):
    for paper in batch:
        paper["abstract"] = scrape_abstract_for_one_paper(paper)
    return batch


def batches_of(site_url, papers, batch):
    """[[paper1, paper2, ...], [paper(batch+1), ...], ...] (dicts with id and url)."""
    all_papers = [{"id": i, "url": "%s/paper/%d" % (site_url, i)} for i in range(papers)]
    return [all_papers[i:i + batch] for i in range(0, papers, batch)]


def run(url=None, papers=200, batch=10, delay=0.1, out=sys.stdout):
    """Scrapes `papers` pages of a local site (delay s each) with gust, in
    batches; returns the scraped papers."""
    import gust
    with open_site(delay) as site_url:
        batches = batches_of(site_url, papers, batch)
        pwex = gust.default_executor(url=url)
        t0 = time.time()
        results = gust.get_all_results(pwex.map(scrape_batch, batches, network=True))
        took = time.time() - t0
    scraped = [paper for b in results for paper in b]
    print("scraped %d abstracts in %d batches of %d, %.0f ms per page: %.2f s (one at a time: "
          "%.0f s)" % (len(scraped), len(batches), batch, delay * 1000, took, papers * delay),
          file=out)
    print("first:", json.dumps(scraped[0]), file=out)
    return scraped


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=None, help="the engine (default: $GUST_URL or local)")
    ap.add_argument("--papers", type=int, default=200)
    ap.add_argument("--batch", type=int, default=10, help="papers per task")
    ap.add_argument("--delay", type=float, default=0.1, help="the site's seconds per page")
    ap.add_argument("--serve", metavar="ADDR", help="only serve the site on ADDR:%d (on the LAN "
                    "host)" % SITE_PORT)
    args = ap.parse_args()
    if args.serve:
        Site(args.delay, args.serve, SITE_PORT)
        threading.Event().wait()  # served by its thread until killed
    else:
        run(args.url, args.papers, args.batch, args.delay)


if __name__ == "__main__":
    main()
