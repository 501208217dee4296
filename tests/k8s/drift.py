#!/usr/bin/env python3
"""Keeps the manifests and the binaries in step: every flag that a rendered
manifest passes to seam-sidecar or seam-ca must be one the binary lists in
its --help; the ports the manifests expose must be the ports those flags
listen on; and the sidecar's probe command, exactly as the manifests write
it, must succeed against a 200 and fail against a 503 (run for real against
a local HTTP server on 127.0.0.1). With --certs, every rendered sidecar
also runs for real: its args as the manifest writes them, with the files
taken from the rendered ConfigMaps and a Kubernetes-style token, the listen
addresses moved to free 127.0.0.1 ports and --ca-url pointed at a local
seam-ca; it must become ready through its own probe and hold the identity of
its namespace and service account, and its probe listener must answer the
app containers' rewritten probes.

usage: drift.py --sidecar BIN --ca BIN [--certs BIN] FILE.yaml...
"""

import argparse
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

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


JWT_PY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "ca_jwt.py")
ISSUER = "https://kubernetes.default.svc.cluster.local"
TRUST_DOMAIN = "cluster.local"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


class LocalCA:
    """A dev root, a service-account signing key with its JWKS, and seam-ca on 127.0.0.1."""

    def __init__(self, certs, ca, work):
        self.work = work
        subprocess.run([certs, "init-root", "--out", f"{work}/ca", "--trust-domain", TRUST_DOMAIN],
                       check=True, capture_output=True, timeout=60)
        subprocess.run(["openssl", "genrsa", "-out", f"{work}/sa.key", "2048"], check=True, capture_output=True)
        subprocess.run(["openssl", "rsa", "-in", f"{work}/sa.key", "-pubout", "-out", f"{work}/sa.pub"],
                       check=True, capture_output=True)
        subprocess.run([sys.executable, JWT_PY, "jwks", f"{work}/jwks.json", f"{work}/sa.pub:k1"], check=True)
        self.port = free_port()
        self.log = open(f"{work}/seam-ca.log", "w")
        self.proc = subprocess.Popen([ca, "--listen", f"127.0.0.1:{self.port}", "--ca-dir", f"{work}/ca",
                                      "--trust-domain", TRUST_DOMAIN, "--journal", f"{work}/journal.jsonl",
                                      "--jwks", f"{work}/jwks.json", "--issuer", ISSUER],
                                     stdout=self.log, stderr=self.log)
        self.up = wait_port(self.port, 15)

    def token(self, namespace, service_account):
        now = int(time.time())
        claims = {"aud": ["seam-ca"], "exp": now + 3600, "iat": now, "nbf": now, "iss": ISSUER,
                  "sub": f"system:serviceaccount:{namespace}:{service_account}"}
        return subprocess.run([sys.executable, JWT_PY, "mint", "--sign", f"rsa:{self.work}/sa.key", "--header",
                               '{"alg":"RS256","kid":"k1"}', "--claims", json.dumps(claims)],
                              check=True, capture_output=True, text=True).stdout.strip()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def local_file(path, pod, container, configmaps, local_ca, namespace, where):
    """The local stand-in for a path the sidecar reads inside its pod, or None."""
    mounts = sorted(container.get("volumeMounts") or [], key=lambda m: -len(m["mountPath"]))
    mount = next((m for m in mounts if path.startswith(m["mountPath"].rstrip("/") + "/")), None)
    if mount is None:
        check(False, f"{where}: {path} is on a mounted volume")
        return None
    volume = next((v for v in pod.get("volumes") or [] if v["name"] == mount["name"]), {})
    key = path[len(mount["mountPath"].rstrip("/")) + 1:]
    out = os.path.join(local_ca.work, f"{namespace}-{volume.get('name', 'none')}-{key.replace('/', '_')}")
    if "projected" in volume:
        sources = volume["projected"].get("sources") or []
        sat = next((s["serviceAccountToken"] for s in sources if "serviceAccountToken" in s), None)
        check(sat is not None and sat.get("path") == key and sat.get("audience") == "seam-ca",
              f"{where}: {path} is a projected service-account token for audience seam-ca")
        text = local_ca.token(namespace, pod.get("serviceAccountName", "default"))
    elif "configMap" in volume:
        name = volume["configMap"]["name"]
        if name == "seam-trust-bundle":  # made by the operator from seam-certs init-root (k8s/README.md)
            text = open(f"{local_ca.work}/ca/bundle.pem").read()
        else:
            data = configmaps.get((namespace, name), {})
            check(key in data, f"{where}: ConfigMap {name} has the key {key}")
            text = data.get(key, "")
    else:
        check(False, f"{where}: {path} comes from a token or a ConfigMap volume")
        return None
    with open(out, "w") as fp:
        fp.write(text)
    return out


def run_rendered_sidecar(sidecar, local_ca, doc, container, configmaps, where):
    """Runs the sidecar with the container's args, made local; checks it gets ready with the pod's identity."""
    pod = doc["spec"]["template"]["spec"]
    namespace = doc["metadata"].get("namespace", "default")
    args, admin, probe_listen = [], None, None
    for a in container.get("args") or []:
        if "=" not in a:
            args.append(a)
            continue
        flag, value = a.split("=", 1)
        if flag == "--ca-url":
            value = f"https://127.0.0.1:{local_ca.port}"
        elif flag in ("--ca-bundle", "--token-file", "--policy", "--routes"):
            value = local_file(value, pod, container, configmaps, local_ca, namespace, where)
            if value is None:
                return
        elif flag in ("--inbound", "--outbound", "--admin", "--probe-listen"):
            value = f"127.0.0.1:{free_port()}"
            if flag == "--admin":
                admin = value
            elif flag == "--probe-listen":
                probe_listen = value
        args.append(f"{flag}={value}")
    if admin is None:
        admin = f"127.0.0.1:{free_port()}"
        args.append(f"--admin={admin}")
    log = open(os.path.join(local_ca.work, f"{namespace}-{doc['metadata']['name']}.log"), "w")
    proc = subprocess.Popen([sidecar] + args, stdout=log, stderr=log)
    try:
        probe = ((container.get("readinessProbe") or {}).get("exec") or {}).get("command") or []
        live = [sidecar] + [re.sub(r"127\.0\.0\.1:\d+", admin, a) for a in probe[1:]]
        ready = False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None and len(live) > 1:
            if subprocess.run(live, capture_output=True, timeout=30).returncode == 0:
                ready = True
                break
            time.sleep(0.2)
        check(ready, f"{where}: the rendered sidecar gets a certificate from seam-ca and its readiness probe passes",
              f"exit {proc.poll()}; log: {open(log.name).read()[-400:]}")
        if ready:
            with socket.create_connection(("127.0.0.1", int(admin.rsplit(':', 1)[1])), timeout=5) as s:
                s.sendall(b"GET /certs HTTP/1.0\r\n\r\n")
                reply = b""
                while chunk := s.recv(65536):
                    reply += chunk
            certs = json.loads(reply.split(b"\r\n\r\n", 1)[1])
            want = f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{pod.get('serviceAccountName', 'default')}"
            check(certs.get("spiffe_id") == want, f"{where}: the sidecar is {want}", str(certs.get("spiffe_id")))
            if probe_listen is not None:
                check_probe_listener(pod, probe_listen, where)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        log.close()
    check(rc == 0, f"{where}: the rendered sidecar drains and exits 0 on SIGTERM", f"exit {rc}")


def http_status(hostport, path):
    """The status code of GET path on hostport (0: no HTTP answer)."""
    host, port = hostport.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.settimeout(5)
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n".encode())
            head = s.recv(65536).split(b"\r\n", 1)[0].split()
            return int(head[1]) if len(head) > 1 and head[1].isdigit() else 0
    except OSError:
        return 0


def rewritten_probes(pod, probe_port):
    """(container, kind, path) of every app-container httpGet probe aimed at the probe listener's port."""
    out = []
    for c in pod.get("containers") or []:
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            get = (c.get(kind) or {}).get("httpGet") or {}
            if get.get("port") == probe_port:
                out.append((c["name"], kind, get.get("path")))
    return out


def check_probe_listener(pod, listen, where):
    """Kubelet's rewritten probes, asked of the running sidecar's probe listener: each path is one it
    serves (503 or 200: no app runs here, or something else answers on its port), never 404."""
    sidecar = next(c for c in pod.get("initContainers") or [] if c.get("name") == "seam-sidecar")
    probe_port = port_of(flags_of(sidecar.get("args") or [])["--probe-listen"][0])
    for cname, kind, path in rewritten_probes(pod, probe_port):
        code = http_status(listen, path)
        check(code in (200, 503), f"{where}: its probe listener serves {cname}'s {kind} ({path})", f"status {code}")
    code = http_status(listen, "/app-health/none/readiness")
    check(code == 404, f"{where}: its probe listener answers 404 for a path it was not given", f"status {code}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sidecar", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--certs", help="seam-certs: also run every rendered sidecar against a local seam-ca")
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
    work = tempfile.mkdtemp(prefix="seam-drift-")
    local_ca = LocalCA(opts.certs, opts.ca, work) if opts.certs else None
    if local_ca is not None:
        check(local_ca.up, "a local seam-ca runs for the rendered sidecars")

    all_docs = []
    for file in opts.files:
        with open(file) as fp:
            all_docs += [(file, d) for d in yaml.safe_load_all(fp) if d]
    configmaps = {(d["metadata"].get("namespace", "default"), d["metadata"]["name"]): d.get("data") or {}
                  for _, d in all_docs if d.get("kind") == "ConfigMap"}
    for file in opts.files:
        for doc in (d for f, d in all_docs if f == file):
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
                    if local_ca is not None and local_ca.up and doc.get("kind") == "Deployment":
                        run_rendered_sidecar(opts.sidecar, local_ca, doc, c, configmaps, where)
                    if "--inbound" in flags:
                        check(port_of(flags["--inbound"][0]) in ports, f"{where}: the mesh port is the --inbound port",
                              f"ports {sorted(ports)}, --inbound {flags['--inbound'][0]}")
                    if "--probe-listen" in flags:
                        listen = flags["--probe-listen"][0]
                        check(port_of(listen) in ports, f"{where}: the probe port is the --probe-listen port",
                              f"ports {sorted(ports)}, --probe-listen {listen}")
                        table = json.loads((flags.get("--app-probes") or ["{}"])[0])
                        pod = doc["spec"]["template"]["spec"] if doc.get("kind") != "Pod" else doc["spec"]
                        for cname, kind, path in rewritten_probes(pod, port_of(listen)):
                            check(path in table, f"{where}: --app-probes has {cname}'s {kind} ({path})")
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
    if local_ca is not None:
        local_ca.stop()
    shutil.rmtree(work, ignore_errors=True)
    print(f"drift: {results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] or not results["passed"] else 0


if __name__ == "__main__":
    sys.exit(main())
