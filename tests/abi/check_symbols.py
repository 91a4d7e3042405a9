#!/usr/bin/env python3
"""check_symbols.py - the exported symbols of librill == core/rill.map == rill.h.

    check_symbols.py LIBRARY MAP HEADER [--soname librill.so.1]

Checks, each failure naming the symbol concerned:
  - every RILL_API function declared in the header is in the map, and every
    name in the map is a RILL_API function of the header;
  - the library's dynamic, defined symbols are exactly the map's names;
  - each of them carries the version node the map gives it (name@@RILL_1.x);
  - nothing but rill_* is exported (apart from the version nodes themselves);
  - the SONAME is the expected one.
Uses readelf (binutils). Exits 0 when all hold, 1 otherwise.
"""
import argparse
import re
import subprocess
import sys


def parse_map(text):
    """{name: node} from a GNU ld version script; nodes in order."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"#[^\n]*", " ", text)
    names, nodes = {}, []
    for m in re.finditer(r"([A-Za-z_][\w.]*)\s*\{(.*?)\}\s*([\w.]*)\s*;", text, re.S):
        node, body = m.group(1), m.group(2)
        nodes.append(node)
        section = None
        for tok in re.findall(r"[\w.*]+\s*:|[^;:\s]+\s*;", body):
            tok = tok.strip()
            if tok.endswith(":"):
                section = tok[:-1].strip()
                continue
            name = tok[:-1].strip()
            if section == "global":
                if name in names:
                    raise SystemExit(f"map: {name} appears in {names[name]} and {node}")
                names[name] = node
    return names, nodes


def parse_header(text):
    """Names of the functions declared with RILL_API."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    # the RILL_API definitions themselves (#define RILL_API ...) are not declarations
    text = re.sub(r"^\s*#.*$", " ", text, flags=re.M)
    return re.findall(r"\bRILL_API\b[^;{}()]*?\b(\w+)\s*\(", text)


def dynamic_symbols(lib):
    """[(name, version, default, type, ndx)] of the defined dynamic symbols."""
    out = subprocess.run(["readelf", "--dyn-syms", "--wide", lib], check=True,
                         capture_output=True, text=True).stdout
    syms = []
    for line in out.splitlines():
        f = line.split()
        if len(f) < 8 or not f[0].rstrip(":").isdigit():
            continue
        typ, bind, ndx, full = f[3], f[4], f[6], f[7]
        if ndx == "UND" or bind == "LOCAL":
            continue
        if "@@" in full:
            name, ver, default = *full.split("@@", 1), True
        elif "@" in full:
            name, ver, default = *full.split("@", 1), False
        else:
            name, ver, default = full, None, False
        syms.append((name, ver, default, typ, ndx))
    return syms


def soname(lib):
    out = subprocess.run(["readelf", "--dynamic", "--wide", lib], check=True,
                         capture_output=True, text=True).stdout
    m = re.search(r"\(SONAME\).*\[(.*)\]", out)
    return m.group(1) if m else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("library")
    ap.add_argument("map")
    ap.add_argument("header")
    ap.add_argument("--soname", default="librill.so.1")
    args = ap.parse_args()

    errors = []
    map_names, nodes = parse_map(open(args.map).read())
    header_names = parse_header(open(args.header).read())
    dup = sorted({n for n in header_names if header_names.count(n) > 1})
    for n in dup:
        errors.append(f"header: {n} is declared twice")
    header_set = set(header_names)
    if not nodes:
        errors.append(f"map: no version node found in {args.map}")
    if not header_set:
        errors.append(f"header: no RILL_API function found in {args.header}")

    for n in sorted(header_set - set(map_names)):
        errors.append(f"{n}: declared RILL_API in the header but missing from the map")
    for n in sorted(set(map_names) - header_set):
        errors.append(f"{n}: in the map ({map_names[n]}) but not a RILL_API function of the header")

    exported = {}
    for name, ver, default, typ, ndx in dynamic_symbols(args.library):
        if ndx == "ABS" and name in nodes and ver in (None, name):
            continue  # the version node's own definition symbol
        if not name.startswith("rill_") or name.startswith("rill__"):
            errors.append(f"{name}: exported by the library but not a public rill_ name")
            continue
        exported[name] = (ver, default, typ)
        if ver is None:
            errors.append(f"{name}: exported without a version node")
        elif not default:
            # a non-default (compat) version is fine only if the default also exists
            pass
    for n in sorted(set(map_names) - set(exported)):
        errors.append(f"{n}: in the map but not exported by the library (not defined, or hidden)")
    for n in sorted(set(exported) - set(map_names)):
        errors.append(f"{n}: exported by the library but not in the map")
    for n, (ver, default, typ) in sorted(exported.items()):
        want = map_names.get(n)
        if want and ver and ver != want:
            errors.append(f"{n}: exported as {n}@{'@' if default else ''}{ver}, the map says {want}")
        if want and ver == want and not default:
            errors.append(f"{n}: exported as {n}@{ver} (not the default version @@{want})")
        if typ != "FUNC":
            errors.append(f"{n}: exported as {typ}, expected FUNC (no data in the ABI)")

    so = soname(args.library)
    if so != args.soname:
        errors.append(f"SONAME is {so!r}, expected {args.soname!r}")

    if errors:
        print(f"ABI symbol check FAILED for {args.library}:")
        for e in errors:
            print("  " + e)
        return 1
    print(f"ABI symbols OK: {len(exported)} functions, nodes {', '.join(nodes)}, "
          f"SONAME {so}; library == {args.map} == RILL_API functions of {args.header}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
