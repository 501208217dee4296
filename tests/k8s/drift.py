#!/usr/bin/env python3
"""Keeps the manifests and the binaries in step: every flag that a rendered
manifest passes to seam-sidecar or seam-ca must be one the binary lists in
its --help; the ports the manifests expose must be the ports those flags
listen on; and the sidecar's probe command, exactly as the manifests write
it, must succeed against a 200 and fail against a 503 (run for real against
a local HTTP server on 127.0.0.1).

usage: drift.py --sidecar BIN --ca BIN FILE.yaml...
"""

import argparse
import http.server
import re
import subprocess
import sys
import threading

import yaml

results = {"passed": 0, "failed": 0}


def check(ok, name, detail=""):
    if ok:
        results["passed"] += 1
        print(f"ok - {name}")
    else:
        results["failed"] += 1
        print(f"not ok - {name}" + (f": {detail}" if detail else ""))


def containers(doc):
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec") if doc.get("kind") != "Pod" else spec
    if not pod:
        return []
    return (pod.get("initContainers") or []) + (pod.get("containers") or [])


def flags_of(args):
    """{flag: value} from --name=value / --name value / --name forms."""
    out, i = {}, 0
    while i < len(args):
        a = args[i]
        if a.startswith("--"):
            if "=" in a:
                k, v = a.split("=", 1)
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                k, v = a, args[i + 1]
                i += 1
            else:
                k, v = a, None
            out.setdefault(k, []).append(v)
        i += 1
    return out


def port_of(hostport):
    return int(hostport.rsplit(":", 1)[1])


class Admin(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200 if self.path in ("/ready", "/live") else 503
        self.send_response(code)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sidecar", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("files", nargs="+")
    opts = ap.parse_args()
    helps = {}
    for name, binary in (("seam-sidecar", opts.sidecar), ("seam-ca", opts.ca)):
        proc = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
        check(proc.returncode == 0, f"{name} --help exits 0", proc.stderr.strip())
        helps[name] = proc.stdout + proc.stderr

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Admin)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    admin_port = server.server_address[1]
    probed = set()

    for file in opts.files:
        with open(file) as fp:
            docs = [d for d in yaml.safe_load_all(fp) if d]
        for doc in docs:
            for c in containers(doc):
                command = (c.get("command") or [""])[0]
                binary = command.rsplit("/", 1)[-1]
                if binary not in helps:
                    continue
                where = f"{file}: {doc['kind']}/{doc['metadata']['name']}/{c['name']}"
                flags = flags_of(c.get("args") or [])
                for flag in sorted(flags):
                    check(re.search(r"(^|[\s\[,])" + re.escape(flag) + r"([\s=\],]|$)", helps[binary], re.M) is not None,
                          f"{where}: {binary} accepts {flag}")
                ports = {p.get("containerPort") for p in c.get("ports") or []}
                if binary == "seam-sidecar":
                    if "--inbound" in flags:
                        check(port_of(flags["--inbound"][0]) in ports, f"{where}: the mesh port is the --inbound port",
                              f"ports {sorted(ports)}, --inbound {flags['--inbound'][0]}")
                    admin = flags.get("--admin", ["127.0.0.1:15000"])[0]
                    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                        probe = (c.get(kind) or {}).get("exec", {}).get("command")
                        if not probe:
                            check(False, f"{where}: has an exec {kind}")
                            continue
                        pflags = flags_of(probe[2:])
                        check(pflags.get("--admin", [None])[0] == admin, f"{where}: {kind} asks the --admin address")
                        key = tuple(probe)
                        if key in probed:
                            continue
                        probed.add(key)
                        # Run the probe exactly as written, pointed at our local admin stand-in.
                        live = [opts.sidecar] + [a.replace(admin, f"127.0.0.1:{admin_port}") for a in probe[1:]]
                        rc = subprocess.run(live, capture_output=True, timeout=30).returncode
                        check(rc == 0, f"{where}: {kind} '{' '.join(probe[1:])}' passes on 200", f"exit {rc}")
                        bad = live[:-1] + ["/not-ready"]
                        rc = subprocess.run(bad, capture_output=True, timeout=30).returncode
                        check(rc != 0, f"{where}: {kind} fails on 503")
                else:
                    listen = flags.get("--listen", [None])[0]
                    check(listen is not None and port_of(listen) in ports, f"{where}: containerPort is the --listen port")
                    get = (c.get("readinessProbe") or {}).get("httpGet") or {}
                    check(get.get("path") == "/healthz" and get.get("scheme") == "HTTPS",
                          f"{where}: readinessProbe is HTTPS GET /healthz")
                    named = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
                    for kind in ("readinessProbe", "livenessProbe"):
                        probe = c.get(kind) or {}
                        port = (probe.get("httpGet") or probe.get("tcpSocket") or {}).get("port")
                        port = named.get(port, port)
                        check(listen is not None and port == port_of(listen), f"{where}: {kind} targets the --listen port")
    server.shutdown()
    print(f"drift: {results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] or not results["passed"] else 0


if __name__ == "__main__":
    sys.exit(main())
