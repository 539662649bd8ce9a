# Calls between the receiver's files go one way: no file calls a function
# of a file that calls it, directly or round a longer circle (recv.h
# says which way each goes).  Read from the objects' symbol tables, so it
# sees what the compiler saw, macros and all.  Prints the edges.
set -u
cd "$(dirname "$0")/../.."
objs=$(for c in receiver/*.c; do o=build/${c%.c}.o; [ -f "$o" ] && echo "$o"; done)
[ -n "$objs" ] || { echo "receiver not built"; exit 1; }
python3 - $objs <<'PY'
import subprocess, sys
objs = sys.argv[1:]
name = lambda o: o.split('/')[-1][:-2]
defs, uses = {}, {}
for o in objs:
    out = subprocess.run(['nm', o], capture_output=True, text=True).stdout
    uses[name(o)] = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[1] in 'TDBR':
            defs[f[2]] = name(o)
        elif len(f) == 2 and f[0] == 'U':
            uses[name(o)].add(f[1])
edges = {a: sorted({defs[s] for s in u if s in defs and defs[s] != a})
         for a, u in uses.items()}
for a in sorted(edges):
    print(f"{a:10} -> {' '.join(edges[a]) or '-'}")
# Any cycle: depth-first search with colours.
state, stack, bad = {}, [], []
def visit(a):
    state[a] = 1
    stack.append(a)
    for b in edges[a]:
        if state.get(b) == 1:
            bad.append(stack[stack.index(b):] + [b])
        elif b not in state:
            visit(b)
    stack.pop()
    state[a] = 2
for a in sorted(edges):
    if a not in state:
        visit(a)
if bad:
    for c in bad:
        print("FAIL: calls go round:", " -> ".join(c))
    sys.exit(1)
print("calls go one way")
PY
