#!/usr/bin/env python3
"""snmpd pass_persist handler serving IF-MIB ifTable or ifXTable rows from a JSON state file.

The tests write the state file between polls (counters that move, wrap, or disappear), and
snmpd asks this script for every OID under the subtree it was registered for:
    pass_persist -p 10 .1.3.6.1.2.1.2.2 /usr/bin/python3 if_mib.py STATE iftable
    pass_persist -p 10 .1.3.6.1.2.1.31.1.1 /usr/bin/python3 if_mib.py STATE ifxtable
    pass_persist -p 10 .1.3.6.1.4.1.32473 /usr/bin/python3 if_mib.py STATE raw
State: {"oids": [["1.3.6.1.4.1.32473.10.2.1.0", "integer", 12500], ...] (raw mode), "ifaces": {"IFINDEX": {"name": .., "type": .., "admin": .., "oper": .., "speed_mbps": ..,
        "in32": .., "out32": .., "hc_in": .., "hc_out": .., "in_errors": .., ...}}}; a key left
out is a column the agent does not have.

SET (community `private`) writes ifAdminStatus (ifTable column 7) into the state file, and
logs `OID VALUE` to `sets.log` beside it: the tests of `snmp-set` action steps see the write
and the agent serves the new value from then on. Nothing else is writable.
"""
import bisect
import json
import os
import sys

STATE, TABLE = sys.argv[1], sys.argv[2]
IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IFX_ENTRY = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
# column -> (state key, type)
IFTABLE = {2: ("name", "string"), 3: ("type", "integer"), 7: ("admin", "integer"),
           8: ("oper", "integer"), 10: ("in32", "counter"), 11: ("in_ucast32", "counter"),
           13: ("in_discards", "counter"), 14: ("in_errors", "counter"),
           16: ("out32", "counter"), 17: ("out_ucast32", "counter"),
           19: ("out_discards", "counter"), 20: ("out_errors", "counter")}
IFXTABLE = {1: ("name", "string"), 6: ("hc_in", "counter64"), 7: ("hc_in_ucast", "counter64"),
            10: ("hc_out", "counter64"), 11: ("hc_out_ucast", "counter64"),
            15: ("speed_mbps", "gauge"), 18: ("alias", "string"),
            19: ("discontinuity", "timeticks")}


CACHE = {"key": None, "rows": [], "oids": []}


def rows():
    """The table, re-read only when the state file changed (mtime and size)."""
    st = os.stat(STATE)
    key = (st.st_mtime_ns, st.st_size, st.st_ino)
    if CACHE["key"] != key:
        CACHE["rows"] = build()
        CACHE["oids"] = [r[0] for r in CACHE["rows"]]
        CACHE["key"] = key
    return CACHE["rows"], CACHE["oids"]


def build():
    with open(STATE) as f:
        state = json.load(f)
    if TABLE == "raw":
        return sorted((parse(o), kind, value) for o, kind, value in state.get("oids", []))
    ifaces = state["ifaces"]
    entry, columns = (IF_ENTRY, IFTABLE) if TABLE == "iftable" else (IFX_ENTRY, IFXTABLE)
    out = []
    for col, (key, kind) in columns.items():
        for index, values in ifaces.items():
            if key in values:
                out.append((entry + (col, int(index)), kind, values[key]))
    out.sort()
    return out


def parse(oid):
    return tuple(int(a) for a in oid.strip().strip(".").split("."))


def answer(row):
    oid, kind, value = row
    sys.stdout.write("." + ".".join(map(str, oid)) + "\n" + kind + "\n" + str(value) + "\n")


for line in sys.stdin:
    cmd = line.strip()
    if cmd == "PING":
        sys.stdout.write("PONG\n")
    elif cmd in ("get", "getnext"):
        oid = parse(sys.stdin.readline())
        table, oids = rows()
        if cmd == "get":
            i = bisect.bisect_left(oids, oid)
            hit = table[i] if i < len(oids) and oids[i] == oid else None
        else:
            i = bisect.bisect_right(oids, oid)
            hit = table[i] if i < len(oids) else None
        if hit is None:
            sys.stdout.write("NONE\n")
        else:
            answer(hit)
    elif cmd == "set":
        oid = parse(sys.stdin.readline())
        kind, _, value = sys.stdin.readline().strip().partition(" ")
        admin = TABLE == "iftable" and len(oid) == len(IF_ENTRY) + 2 \
            and oid[:len(IF_ENTRY)] == IF_ENTRY and oid[len(IF_ENTRY)] == 7
        with open(STATE) as f:
            state = json.load(f)
        index = str(oid[-1])
        if not admin or index not in state.get("ifaces", {}):
            sys.stdout.write("not-writable\n")
        elif kind != "integer":
            sys.stdout.write("wrong-type\n")
        else:
            state["ifaces"][index]["admin"] = int(value)
            tmp = STATE + ".set"
            with open(tmp, "w") as f:
                json.dump(state, f)
            os.replace(tmp, STATE)
            with open(os.path.join(os.path.dirname(STATE), "sets.log"), "a") as log:
                log.write(".".join(map(str, oid)) + " " + value + "\n")
            sys.stdout.write("DONE\n")
    sys.stdout.flush()
