#!/usr/bin/env python3
"""A shoal HTTP agent in plain Python (standard library only).

It registers with a node's HTTP API (shoal node --http), leases tasks with a
long poll, runs them on `--slots` threads, reports results with its next
lease, and heartbeats the tasks it holds. The node treats it like any other
executor: same quotas, same leases; if this process dies, its leases expire
and the tasks run elsewhere. See docs/api.md.

    python3 agent.py --url http://127.0.0.1:8080 --api-token T --token W \
        --id py-1 --types py.upper,py.sha256 --slots 4

Task types it knows (the payload is text):
    py.upper   the payload in upper case
    py.sha256  the hex SHA-256 of the payload
    py.fail    fails permanently with a Python error
    py.sleep   sleeps for the payload's number of milliseconds, returns "slept"
"""

import argparse
import base64
import concurrent.futures
import hashlib
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request


class Permanent(Exception):
    """A failure retrying cannot fix."""


def _fail(_payload):
    raise Permanent("py.fail always fails (raised in agent.py)")


def _sleep(payload):
    time.sleep(int(payload or "0") / 1000.0)
    return "slept"


HANDLERS = {
    "py.upper": lambda p: p.upper(),
    "py.sha256": lambda p: hashlib.sha256(p.encode()).hexdigest(),
    "py.fail": _fail,
    "py.sleep": _sleep,
}


class APIError(Exception):
    def __init__(self, status, code, message):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code = status, code


class Agent:
    def __init__(self, args):
        self.url = args.url.rstrip("/")
        self.api_token = args.api_token
        self.exec_token = args.token
        self.id = args.id
        self.types = [t for t in args.types.split(",") if t]
        self.slots = args.slots
        self.max_tasks = args.max_tasks
        self.lock = threading.Condition()
        self.running = {}  # task id -> attempt
        self.results = []  # finished, not yet reported
        self.reported = 0
        self.stop = threading.Event()
        self.heartbeat_s = 1.0
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.slots)

    def call(self, path, body, timeout=90):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST")
        req.add_header("Content-Type", "application/json")
        if self.api_token:
            req.add_header("Authorization", "Bearer " + self.api_token)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            try:
                err = json.loads(e.read())["error"]
            except Exception:  # not the API's error shape
                err = {"code": "http", "message": str(e)}
            raise APIError(e.code, err["code"], err["message"]) from None

    def register(self):
        while not self.stop.is_set():
            try:
                r = self.call("/v1/agents", {"id": self.id, "types": self.types, "slots": self.slots,
                                             "capabilities": {"lang": "python", "python": sys.version.split()[0]},
                                             "token": self.exec_token})
                self.heartbeat_s = max(r["heartbeat_ms"] / 1000.0, 0.05)
                with self.lock:
                    self.running.clear()
                    self.results.clear()
                print(f"agent {self.id} registered (lease ttl {r['lease_ttl_ms']} ms)", flush=True)
                return
            except APIError as e:
                if e.status in (400, 401):
                    sys.exit(f"agent {self.id}: registration refused: {e}")
                print(f"agent {self.id}: register: {e}; retrying", file=sys.stderr, flush=True)
            except OSError as e:
                print(f"agent {self.id}: register: {e}; retrying", file=sys.stderr, flush=True)
            self.stop.wait(1)

    def run_task(self, t):
        if "payload_base64" in t:
            payload = base64.b64decode(t["payload_base64"]).decode("utf-8", "replace")
        else:
            payload = t.get("payload", "")
        res = {"id": t["id"], "attempt": t["attempt"]}
        start = time.monotonic()
        try:
            handler = HANDLERS.get(t["type"])
            if handler is None:
                raise Permanent(f"agent.py has no handler for {t['type']!r}")
            res.update(ok=True, output=handler(payload))
        except Permanent as e:
            res.update(ok=False, error=str(e), permanent=True)
        except Exception as e:  # any other failure is retried by the node
            res.update(ok=False, error=f"{type(e).__name__}: {e}")
        res["run_ms"] = (time.monotonic() - start) * 1000
        with self.lock:
            if t["id"] not in self.running:
                return  # cancelled meanwhile: the node wants no result
        try:  # report at once; the main loop's lease may be parked for seconds
            self.call("/v1/agents/" + self.id + "/complete", {"results": [res]}, timeout=10)
            sent = True
        except (APIError, OSError) as e:
            print(f"agent {self.id}: complete: {e}; reporting with the next lease", file=sys.stderr, flush=True)
            sent = False
        with self.lock:
            self.running.pop(t["id"], None)
            if sent:
                self.reported += 1
            else:
                self.results.append(res)
            self.lock.notify_all()

    def heartbeats(self):
        while not self.stop.wait(self.heartbeat_s):
            with self.lock:
                # Held: running, or finished but not yet reported.
                held = list(self.running) + [r["id"] for r in self.results]
            try:
                r = self.call("/v1/agents/" + self.id + "/heartbeat", {"held": held, "load": self.load()}, timeout=10)
            except (APIError, OSError) as e:
                print(f"agent {self.id}: heartbeat: {e}", file=sys.stderr, flush=True)
                continue
            with self.lock:
                for tid in r.get("cancel", []):
                    # Python threads cannot be interrupted: drop the result.
                    self.running.pop(tid, None)

    def load(self):
        try:
            return {"cpu": min(os.getloadavg()[0] / (os.cpu_count() or 1), 1.0)}
        except OSError:
            return {}

    def loop(self):
        self.register()
        threading.Thread(target=self.heartbeats, daemon=True).start()
        while not self.stop.is_set():
            with self.lock:
                while len(self.running) >= self.slots and not self.stop.is_set():
                    self.lock.wait(1)
                free = self.slots - len(self.running)
                results, self.results = self.results, []
            try:
                r = self.call("/v1/agents/" + self.id + "/lease",
                              {"max": free, "timeout_ms": 20000, "results": results, "load": self.load()})
            except APIError as e:
                print(f"agent {self.id}: lease: {e}", file=sys.stderr, flush=True)
                if e.code == "unknown_executor":
                    self.register()
                else:
                    self.stop.wait(1)
                continue
            except OSError as e:
                print(f"agent {self.id}: lease: {e}", file=sys.stderr, flush=True)
                with self.lock:  # report them again with the next lease
                    self.results = results + self.results
                self.stop.wait(1)
                continue
            with self.lock:
                self.reported += len(results)
                if self.max_tasks and self.reported >= self.max_tasks:
                    break
            with self.lock:
                for tid in r.get("cancel", []):
                    self.running.pop(tid, None)
                for t in r["tasks"]:
                    self.running[t["id"]] = t["attempt"]
            for t in r["tasks"]:
                self.pool.submit(self.run_task, t)
        self.stop.set()
        self.pool.shutdown(wait=False, cancel_futures=True)


def main():
    env = os.environ.get
    p = argparse.ArgumentParser(description="shoal HTTP agent (Python standard library only)")
    p.add_argument("--url", default=env("SHOAL_URL", "http://127.0.0.1:8080"), help="node HTTP API base URL (env SHOAL_URL)")
    p.add_argument("--api-token", default=env("SHOAL_API_TOKEN", ""), help="API bearer token (env SHOAL_API_TOKEN)")
    p.add_argument("--token", default=env("SHOAL_TOKEN", ""), help="executor token, as shoal node --token (env SHOAL_TOKEN)")
    p.add_argument("--id", default=f"py-{os.uname().nodename}-{os.getpid()}", help="agent id, unique per node")
    p.add_argument("--types", default=",".join(HANDLERS), help="comma-separated task types to run")
    p.add_argument("--slots", type=int, default=2, help="tasks run at once")
    p.add_argument("--max-tasks", type=int, default=0, help="exit after reporting this many results (0: run until stopped)")
    agent = Agent(p.parse_args())
    signal.signal(signal.SIGTERM, lambda *_: agent.stop.set())
    try:
        agent.loop()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
