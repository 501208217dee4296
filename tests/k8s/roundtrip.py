#!/usr/bin/env python3
"""Decodes every pod-template object with kubectl, offline, and fails on any
field that does not survive the round trip (a misspelt field is dropped by
the typed decoder) or on a value of the wrong type (kubectl refuses it).

usage: roundtrip.py FILE.yaml...
"""

import json
import os
import subprocess
import sys
import tempfile

import yaml

POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Pod"}
SENTINEL = "seam-roundtrip-check:0"


def missing_paths(want, got, path=""):
    """Paths in want whose value is absent or different in got."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [path or "."]
        out = []
        for key, value in want.items():
            if key not in got:
                out.append(f"{path}.{key}")
            else:
                out += missing_paths(value, got[key], f"{path}.{key}")
        return out
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [path]
        out = []
        for i, (w, g) in enumerate(zip(want, got)):
            out += missing_paths(w, g, f"{path}[{i}]")
        return out
    return [] if want == got else [f"{path} ({want!r} became {got!r})"]


def pod_spec(doc):
    if doc["kind"] == "Pod":
        return doc["spec"]
    return doc["spec"]["template"]["spec"]


def check(doc, where, env):
    spec = pod_spec(doc)
    first = spec["containers"][0]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as tmp:
        yaml.safe_dump(doc, tmp)
    try:
        # A real change (the first container's image) makes kubectl print the typed object.
        proc = subprocess.run(
            ["kubectl", "set", "image", "--local", "-o", "json", "-f", tmp.name, f"{first['name']}={SENTINEL}"],
            capture_output=True, text=True, env=env, timeout=60)
    finally:
        os.unlink(tmp.name)
    if proc.returncode != 0 or not proc.stdout.strip():
        return [f"kubectl could not decode it: {proc.stderr.strip() or 'no output'}"]
    got = json.loads(proc.stdout)
    pod_spec(got)["containers"][0]["image"] = first.get("image")
    return missing_paths(doc, got)


def main(files):
    env = dict(os.environ)
    env.setdefault("HOME", tempfile.mkdtemp())  # kubectl wants a writable home for its cache
    passed = failed = 0
    for name in files:
        with open(name) as fp:
            docs = [d for d in yaml.safe_load_all(fp) if d]
        for doc in docs:
            if doc.get("kind") not in POD_TEMPLATE_KINDS:
                continue
            where = f"{name}: {doc['kind']}/{doc['metadata']['name']}"
            problems = check(doc, where, env)
            if problems:
                failed += 1
                for p in problems:
                    print(f"not ok - {where}: lost in kubectl's decoding: {p}")
            else:
                passed += 1
                print(f"ok - {where} survives kubectl's typed decoding")
    print(f"roundtrip: {passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
