#!/usr/bin/env python3
"""Differential test: the same requests to Polar's own server (the oracle) and to ours.

    polar_diff.py --polar URL --polar-seed FILE --ours URL --spec FILE [--seed N] [--mutations N]

The oracle is already seeded (FILE is what its `seed` command printed); ours is seeded here
through the admin API (REFUNDS_ADMIN_TOKEN) from the same spec, so both hold the same
organizations, customers and orders. Every case is sent to both, in the same order, so the
refunds each creates keep the orders' counters equal on both sides.

Compared: status, content type, the headers in COMPARED_HEADERS, and the bodies after ids
and timestamps are replaced by placeholders. Differences listed in known-differences.json
(matched by case name or tag) are reported but do not fail the run.

Only the standard library: requests go out on raw sockets, because several cases send what
ordinary clients refuse to send (raw non-ASCII in the query, a tab in a header, no Host...).
"""
import argparse
import gzip
import json
import os
import re
import socket
import sys
import urllib.parse
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import corpus_refunds  # noqa: E402

# New endpoints add a module with the same two functions (cases, mutations) here.
CORPUS_MODULES = [corpus_refunds]

COMPARED_HEADERS = ["www-authenticate", "allow", "cache-control", "content-encoding", "polar-version",
                    "access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers"]
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
DATETIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?$")
TEMPLATE_RE = re.compile(r"\{\{([a-z_]+\.[A-Za-z0-9_.:-]+?)(\|upper)?\}\}")
# A template naming a refund that one side did not create still has to become a uuid.
MISSING_ID = "00000000-0000-4000-8000-000000000000"


# --- HTTP ------------------------------------------------------------------------------------
def http(base, method, target, headers, body, timeout=30.0):
    """Send one request as raw bytes (Connection: close), return (status, headers, body)."""
    url = urllib.parse.urlsplit(base)
    request = method.encode() + b" " + target + b" HTTP/1.1\r\n"
    for name, value in headers:
        request += name + b": " + value + b"\r\n"
    request += b"\r\n" + (body or b"")
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a server may answer (413, 411) and close before reading the whole body
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not lines or not lines[0].startswith(b"HTTP/"):
        return None, {}, raw
    status = int(lines[0].split()[1])
    response_headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        response_headers.setdefault(name.strip().lower().decode("latin-1"), []).append(
            value.strip().decode("latin-1"))
    if "chunked" in ",".join(response_headers.get("transfer-encoding", [])).lower():
        rest = dechunk(rest)
    elif "content-length" in response_headers:
        rest = rest[: int(response_headers["content-length"][0])]
    if "gzip" in response_headers.get("content-encoding", []):
        rest = gzip.decompress(rest)
    return status, response_headers, rest


def dechunk(data):
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return out


def admin(base, token, path, payload):
    body = json.dumps(payload).encode()
    status, _, answer = http(base, "POST", path.encode(), [
        (b"Host", urllib.parse.urlsplit(base).netloc.encode()),
        (b"Authorization", b"Bearer " + token.encode()),
        (b"Content-Type", b"application/json"),
        (b"Content-Length", str(len(body)).encode()),
        (b"Connection", b"close")], body)
    if status != 201:
        raise SystemExit(f"polar-diff: seeding ours: POST {path} answered {status}: {answer[:300]!r}")
    return json.loads(answer)


# --- one side (Polar or ours) ----------------------------------------------------------------
class Side:
    def __init__(self, name, base):
        self.name, self.base = name, base
        self.vars = {}        # template name -> value (ids, tokens)
        self.placeholder = {}  # lowercase uuid -> placeholder name
        self.unknown = 0

    def add_id(self, name, value):
        if value:
            self.vars[name] = value
            self.placeholder[value.lower()] = name

    def load_seed(self, seed, spec):
        """Ids and tokens from the oracle's seed output (ours is converted to the same shape)."""
        self.add_id("org.a", seed["org_a"])
        self.add_id("org.b", seed["org_b"])
        for key, token in seed["tokens"].items():
            self.vars["token." + key] = token
        for org in ("a", "b"):
            for i, cid in enumerate(seed[f"customers_{org}"]):
                self.add_id(f"customer.{org}{i}", cid)
        for name, order in seed["orders"].items():
            self.add_id("order." + name, order["id"])
            self.add_id("sub." + name, order.get("subscription_id"))

    def fill(self, text):
        def one(m):
            value = self.vars.get(m.group(1))
            if value is None:
                value = MISSING_ID if m.group(1).startswith(("refund.", "order.")) else "missing"
            return value.upper() if m.group(2) else value
        return TEMPLATE_RE.sub(one, text)

    def name_of(self, raw):
        key = raw.lower()
        if key not in self.placeholder:
            # An id neither seeded nor created by a named case: numbered in order of appearance.
            self.unknown += 1
            self.placeholder[key] = f"new{self.unknown}"
        name = self.placeholder[key]
        return f"<{name}{':upper' if raw != key else ''}>"


def seed_ours(base, admin_token, spec):
    """The oracle's seed, replayed through our admin API, printed in the oracle's shape."""
    rw = ["refunds:read", "refunds:write", "orders:read"]
    out = {"tokens": {}, "orders": {}}
    orgs = {}
    for key in ("a", "b"):
        orgs[key] = admin(base, admin_token, "/admin/organizations", {"name": f"Org {key.upper()}"})["id"]
        out["org_" + key] = orgs[key]
    for key, org, scopes in (("a_rw", "a", rw), ("a_ro", "a", ["refunds:read"]), ("b_rw", "b", rw)):
        out["tokens"][key] = admin(base, admin_token, f"/admin/organizations/{orgs[org]}/access-tokens",
                                   {"scopes": scopes})["token"]
    for key in ("a", "b"):
        out["customers_" + key] = [
            admin(base, admin_token, "/admin/customers",
                  {"organization_id": orgs[key], "email": c["email"], "external_id": c.get("external_id")})["id"]
            for c in spec.get("customers_" + key, [])]
    for o in spec["orders"]:
        org = o.get("org", "a")
        sub = str(uuid.uuid4()) if o.get("sub") else None
        body = {"organization_id": orgs[org], "customer_id": out["customers_" + org][o.get("customer", 0)],
                "net_amount": o["net"], "tax_amount": o["tax"], "currency": o.get("currency", "usd")}
        if sub:
            body["subscription_id"] = sub
        order = admin(base, admin_token, "/admin/orders", body)
        out["orders"][o["name"]] = {"id": order["id"], "subscription_id": sub}
    return out


# --- building and normalising ----------------------------------------------------------------
def build(case, side):
    """The request bytes of a case for one side (templates filled with that side's ids)."""
    target = case["path"]
    if isinstance(target, str):
        target = side.fill(target).encode()
    body = case.get("body")
    if "json" in case:
        body = json.dumps(case["json"])
    if isinstance(body, str):
        body = side.fill(body).encode()
    headers = [(b"Host", urllib.parse.urlsplit(side.base).netloc.encode())]
    auth = case.get("auth", "a_rw")
    if auth:
        headers.append((b"Authorization", b"Bearer " + side.vars["token." + auth].encode()))
    if body is not None and case.get("content_type", "application/json") is not None:
        headers.append((b"Content-Type", case.get("content_type", "application/json").encode()))
    for name, value in case.get("headers", []):
        if isinstance(value, str):
            value = side.fill(value).encode("latin-1")
        headers.append((name.encode(), value))
    if body is not None and case.get("chunked"):
        headers.append((b"Transfer-Encoding", b"chunked"))
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
    elif body is not None:
        headers.append((b"Content-Length", str(len(body)).encode()))
    headers.append((b"Connection", b"close"))
    return case.get("method", "GET"), target, headers, body


def normalise(value, side):
    if isinstance(value, dict):
        return {k: normalise(v, side) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, side) for v in value]
    if isinstance(value, str):
        m = DATETIME_RE.match(value)
        if m:
            # Keep the shape (fraction present, zone notation): only the instant is masked.
            return f"<datetime{'.f' if m.group(1) else ''}{m.group(2) or ''}>"
        return UUID_RE.sub(lambda u: side.name_of(u.group(0)), value)
    return value


def normalise_header(name, values, side):
    if not values:
        return None
    value = ", ".join(values)
    if name == "www-authenticate":
        # Polar builds the scope list from a Python set: its order is not meaningful.
        value = re.sub(r'scope="([^"]*)"', lambda m: 'scope="%s"' % " ".join(sorted(m.group(1).split())), value)
    return UUID_RE.sub(lambda u: side.name_of(u.group(0)), value)


def sort_keys_of(target):
    query = urllib.parse.urlsplit(target.decode("latin-1")).query
    keys = [v for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True) if k == "sorting"]
    return [k.lstrip("-") for k in keys] or ["created_at"]


def order_ties(parsed, target, side):
    """Polar sorts by exactly the requested keys, with no tie-breaker, so items equal on
    every sort key come in no defined order: put each run of such items in one order
    (by their normalised text) on both sides, the rest of the order stays compared."""
    items = parsed.get("items") if isinstance(parsed, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return parsed
    keys = sort_keys_of(target)
    out, run = [], []
    for item in items + [None]:
        if run and (item is None or [item.get(k) for k in keys] != [run[0].get(k) for k in keys]):
            out += sorted(run, key=lambda i: json.dumps(normalise(i, side), sort_keys=True))
            run = []
        if item is not None:
            run.append(item)
    return {**parsed, "items": out}


def canonical(body_bytes, side, target=b""):
    """A comparable text of a body: canonical JSON when it parses, else the text itself."""
    try:
        parsed = json.loads(body_bytes)
    except ValueError:
        return UUID_RE.sub(lambda u: side.name_of(u.group(0)), body_bytes.decode("utf-8", "replace"))
    parsed = order_ties(parsed, target, side)
    # json.dumps keeps 1e+20 and 100000000000000000000 apart (== would not).
    return json.dumps(normalise(parsed, side), sort_keys=True, ensure_ascii=False)


def observe(case, side, status, headers, body):
    """Name what a case created (a refund), so both sides' new ids get the same placeholder."""
    if status == 201:
        try:
            created = json.loads(body)
            side.add_id("refund." + case["name"], created["id"])
        except (ValueError, KeyError, TypeError):
            pass


def answer_of(case, side):
    method, target, headers, body = build(case, side)
    try:
        status, response_headers, response_body = http(side.base, method, target, headers, body)
    except OSError as error:
        return {"status": f"no answer ({error.__class__.__name__})", "content-type": None,
                **{h: None for h in COMPARED_HEADERS}, "body": ""}, ""
    observe(case, side, status, response_headers, response_body)
    result = {"status": status,
              "content-type": ", ".join(response_headers.get("content-type", [])) or None}
    for name in COMPARED_HEADERS:
        result[name] = normalise_header(name, response_headers.get(name), side)
    result["body"] = canonical(response_body, side, target)
    return result, response_body.decode("utf-8", "replace")


# --- known differences -----------------------------------------------------------------------
def load_known(path):
    entries = json.loads(Path(path).read_text())["differences"]
    for entry in entries:
        entry.setdefault("cases", [])
        entry.setdefault("tags", [])
    return entries


def match_known(case, entries, polar, ours):
    """The known-difference entry covering this case, checked against its expected statuses."""
    tags = set(case.get("tags", []))
    if polar["status"] == ours["status"]:
        # Every difference we make on purpose changes the status; an equal status with other
        # differences (a body, a header) is not what an entry describes.
        return None, None
    for entry in entries:
        if case["name"] in entry["cases"] or any(set(t.split("+")) <= tags for t in entry["tags"]):
            for side, answer in (("polar", polar), ("ours", ours)):
                expected = entry.get(side + "_status")
                if expected is not None and answer["status"] not in expected:
                    return None, f"{entry['id']} expects {side} status in {expected}"
            return entry, None
    return None, None


def json_diff(a, b, path="", out=None):
    """Where two normalised bodies differ: [(path, polar value, our value)], a few at most."""
    out = [] if out is None else out
    if len(out) >= 3:
        return out
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                out.append((f"{path}.{key}", a.get(key, "<absent>"), b.get(key, "<absent>")))
            else:
                json_diff(a[key], b[key], f"{path}.{key}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            json_diff(x, y, f"{path}[{i}]", out)
    elif json.dumps(a) != json.dumps(b):
        out.append((path or ".", a, b))
    return out


def body_detail(p, o):
    try:
        return "; ".join(f"{where}: polar={short(json.dumps(x, ensure_ascii=False), 200)} "
                         f"ours={short(json.dumps(y, ensure_ascii=False), 200)}"
                         for where, x, y in json_diff(json.loads(p), json.loads(o)))
    except ValueError:
        return None


def short(text, limit=400):
    text = text if isinstance(text, str) else json.dumps(text)
    return text if len(text) <= limit else text[:limit] + f"...(+{len(text) - limit})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polar", required=True)
    parser.add_argument("--polar-seed", required=True, help="the oracle's seed output (JSON)")
    parser.add_argument("--ours", required=True)
    parser.add_argument("--spec", default=str(HERE / "seed-spec.json"))
    parser.add_argument("--known", default=str(HERE / "known-differences.json"))
    parser.add_argument("--seed", type=int, default=1, help="random mutations' seed")
    parser.add_argument("--mutations", type=int, default=300)
    parser.add_argument("--only", help="run only cases whose name contains this")
    parser.add_argument("--ignore", action="append", default=[], metavar="FIELD",
                        help="do not compare this field (a header name, status, content-type or body)")
    parser.add_argument("--report", help="write every differing case, both raw answers, here (JSON lines)")
    args = parser.parse_args()

    admin_token = os.environ.get("REFUNDS_ADMIN_TOKEN")
    if not admin_token:
        raise SystemExit("polar-diff: REFUNDS_ADMIN_TOKEN must be set (our server's admin token)")
    spec = json.loads(Path(args.spec).read_text())
    polar, ours = Side("polar", args.polar), Side("ours", args.ours)
    polar.load_seed(json.loads(Path(args.polar_seed).read_text()), spec)
    ours.load_seed(seed_ours(args.ours, admin_token, spec), spec)
    for module in CORPUS_MODULES:
        # Fixed ids the corpus sends (an order no one has...) keep one name on both sides.
        for name, value in getattr(module, "NAMED_IDS", {}).items():
            polar.add_id(name, value)
            ours.add_id(name, value)
    known = load_known(args.known)

    cases = []
    for module in CORPUS_MODULES:
        cases += module.cases(spec)
    for module in CORPUS_MODULES:
        cases += module.mutations(spec, args.seed, args.mutations)
    names = [c["name"] for c in cases]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise SystemExit(f"polar-diff: duplicate case names: {sorted(duplicates)}")
    if args.only:
        cases = [c for c in cases if args.only in c["name"]]

    report = open(args.report, "w") if args.report else None
    identical = known_count = unexpected = 0
    used_known = set()
    for case in cases:
        p, p_raw = answer_of(case, polar)
        o, o_raw = answer_of(case, ours)
        fields = [f for f in p if p[f] != o[f] and f not in args.ignore]
        if not fields:
            identical += 1
            continue
        entry, mismatch = match_known(case, known, p, o)
        if entry:
            known_count += 1
            used_known.add(entry["id"])
            label = f"known:{entry['id']}"
        else:
            unexpected += 1
            label = "UNEXPECTED" + (f" ({mismatch})" if mismatch else "")
        request = f"{case.get('method', 'GET')} {short(str(case['path']), 120)}"
        for f in fields:
            detail = body_detail(p[f], o[f]) if f == "body" else None
            if detail:
                print(f"DIFF {case['name']} [{label}] {request} body at {detail}")
            else:
                print(f"DIFF {case['name']} [{label}] {request} {f}: polar={short(str(p[f]))} ours={short(str(o[f]))}")
        if report:
            report.write(json.dumps({"case": case["name"], "label": label, "request": request,
                                     "auth": case.get("auth", "a_rw"), "headers": case.get("headers", []),
                                     "body": case.get("json", case.get("body")) if not isinstance(case.get("body"), bytes)
                                     else repr(case["body"]), "fields": fields, "polar": p, "ours": o,
                                     "polar_raw": p_raw[:2000], "ours_raw": o_raw[:2000]}, default=str) + "\n")
    unused = [e["id"] for e in known if e["id"] not in used_known]
    if unused and not args.only:
        print(f"polar-diff: known differences not seen in this run: {', '.join(unused)}")
    print(f"polar-diff: {len(cases)} requests, {identical} identical, {known_count} known differences, "
          f"{unexpected} unexpected differences")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
