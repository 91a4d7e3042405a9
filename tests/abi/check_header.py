#!/usr/bin/env python3
"""check_header.py HEADER - rill.h defines no struct or union layout.

Every public type must stay opaque (`typedef struct rill_x rill_x;`): a
struct body in the header would make its size and fields part of the ABI.
Fails naming each `struct x {` / `union x {` it finds (comments ignored).
"""
import re
import sys

path = sys.argv[1]
text = open(path).read()
# blank out comments, keeping line numbers
text = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
text = re.sub(r"//[^\n]*", "", text)
bad = []
for m in re.finditer(r"\b(struct|union)\b\s*(\w*)\s*\{", text):
    line = text.count("\n", 0, m.start()) + 1
    bad.append(f"{path}:{line}: {m.group(1)} {m.group(2) or '(anonymous)'} has a body")
if bad:
    print("public header defines a layout (types must stay opaque):")
    print("\n".join("  " + b for b in bad))
    sys.exit(1)
n = len(re.findall(r"typedef\s+struct\s+\w+\s+\w+\s*;", text))
print(f"{path}: no struct/union layout; {n} opaque typedefs")
