#!/usr/bin/env python3
"""check_ptx_wait_first.py: every kernel waits for the kernel before it before it touches memory.

Programmatic dependent launch lets a kernel start while the kernel before it in the stream is still
running; griddepcontrol.wait (kernel_common.cuh, wait_for_producer_then_release_consumer) is what makes
the producer's writes visible. A global load, store or atomic placed before the wait reads unfinished
data, and no GPU test sees it reliably: it is a race. This reads the PTX of the runtime's kernels (sm_90,
where the wait is compiled in) and requires, for every kernel entry:

- on every path from the kernel's entry to its first griddepcontrol.wait (branches followed both ways: the
  compiler lays blocks out in any order), no memory access other than parameter loads, local and shared
  memory, and L2 prefetches (prefetch.L2, cp.async.bulk.prefetch.L2: the weights, which no kernel writes);
  a kernel that never waits therefore touches no global memory at all; a call to a device function the
  compiler did not inline counts as an access too (its body is not followed).

It reads PTX text, so it sees what the compiler emitted, not what the source meant: a load the compiler
hoisted above the wait fails here. `--self-test` runs the checker on small PTX samples, good and bad.

    python3 check_ptx_wait_first.py [--min-kernels N] FILE.ptx...
    python3 check_ptx_wait_first.py --self-test
"""
import re
import sys

ENTRY = re.compile(r"^\s*(?:\.visible\s+|\.weak\s+)?\.entry\s+([A-Za-z0-9_$.]+)")
LABEL = re.compile(r"^\s*(\$?[A-Za-z0-9_$.]+):(?!:)")  # not a qualifier's "::" (ld.global.L1::no_allocate)
BRANCH = re.compile(r"^\s*(?:@!?%\w+\s+)?bra(?:\.uni)?\s+(\$?[A-Za-z0-9_$.]+)\s*$")
# An instruction's opcode (after an optional predicate guard).
OPCODE = re.compile(r"^\s*(?:@!?%\w+\s+)?([a-z][A-Za-z0-9_.]*)")

MEMORY_OPS = ("ld", "ldu", "st", "atom", "red", "cp.async", "cp.reduce", "tex", "suld", "sust", "sured",
              "multimem", "prefetch", "prefetchu", "discard", "applypriority")
# Before the wait: parameters, this thread's local memory, the block's shared memory, and L2 prefetches (of the
# weights: L2 is coherent, so a line fetched early is the line the producer leaves). An L1 prefetch may not.
ALLOWED_BEFORE_WAIT = ("ld.param", "ld.local", "ld.shared", "st.local", "st.shared", "prefetch.L2",
                       "prefetch.global.L2", "cp.async.bulk.prefetch.L2")


def is_memory_access(opcode):
    """A memory instruction other than those a kernel may issue before its wait (generic loads and stores,
    without a state space, may reach global memory: they count)."""
    if opcode.startswith(("wmma.load", "wmma.store")):
        return ".shared" not in opcode
    if opcode.split(".", 1)[0] not in MEMORY_OPS and not opcode.startswith(("cp.async", "cp.reduce")):
        return False
    return not opcode.startswith(ALLOWED_BEFORE_WAIT)


def kernels_of(text):
    """(name, [(line number, line)]) for every kernel entry of a PTX file."""
    kernels, current = [], None
    for number, line in enumerate(text.splitlines(), 1):
        m = ENTRY.match(line)
        if m:
            current = (m.group(1), [])
            kernels.append(current)
            continue
        if current is not None:
            current[1].append((number, line.split("//", 1)[0]))
    return kernels


def instructions_of(lines):
    """The body's instructions as (line number, text, opcode, predicated, branch target) and its labels as
    {label: index of the instruction after it}. Braces (inline asm's scopes) are dropped and a line is split
    into its statements, so `{ ld.global.nc.b16 %rs1, [%rd1];}` is read as the load it holds."""
    instructions, labels = [], {}
    for number, line in lines:
        for statement in line.replace("{", " ").replace("}", " ").split(";"):
            text = statement.strip()
            m = LABEL.match(text)
            if m:
                labels[m.group(1)] = len(instructions)
                text = text[m.end():].strip()
            if not text or text.startswith("."):
                continue  # directives and declarations
            m = OPCODE.match(text)
            if not m:
                continue
            b = BRANCH.match(text)
            instructions.append((number, text, m.group(1), text.startswith("@"), b.group(1) if b else None))
    return instructions, labels


def problems_of(name, lines):
    """What is wrong with one kernel's body, as messages (none: it waits first). Follows the control flow
    from the entry, every branch both ways, and stops at each griddepcontrol.wait: whatever it reaches is
    what may run before the wait (the compiler may lay a block out after the wait and branch back)."""
    instructions, labels = instructions_of(lines)
    found, seen, todo = [], set(), [0]
    while todo:
        i = todo.pop()
        if i in seen or i >= len(instructions):
            continue
        seen.add(i)
        number, text, opcode, predicated, target = instructions[i]
        if opcode.startswith("griddepcontrol.wait") and not predicated:
            continue  # a predicated wait may be skipped: the walk goes on past it
        if is_memory_access(opcode):
            found.append("%s, line %d: memory access that may run before griddepcontrol.wait: %s" %
                         (name, number, text))
        elif opcode.startswith("call"):  # the callee's body is not followed: it may touch memory
            found.append("%s, line %d: a call that may run before griddepcontrol.wait: %s" % (name, number, text))
        if target is not None:
            if target not in labels:
                found.append("%s, line %d: branch to an unknown label %s" % (name, number, target))
            else:
                todo.append(labels[target])
            if predicated:
                todo.append(i + 1)
        elif opcode in ("ret", "exit", "trap") and not predicated:
            continue
        else:
            todo.append(i + 1)
    return sorted(found, key=lambda f: int(re.search(r"line (\d+)", f).group(1)))


def check(paths, min_kernels):
    kernels = count = 0
    failures = []
    for path in paths:
        try:
            with open(path) as f:
                text = f.read()
        except OSError as e:
            print("check_ptx_wait_first: %s: %s" % (path, e.strerror))
            return 2
        for name, lines in kernels_of(text):
            kernels += 1
            problems = problems_of(name, lines)
            shown = ["%s: %s" % (path, p) for p in problems[:3]]
            if len(problems) > 3:
                shown.append("%s: %s: %d more like these" % (path, name, len(problems) - 3))
            failures += shown
            count += len(problems)
    for f in failures:
        print("FAIL " + f)
    print("check_ptx_wait_first: %d kernels in %d PTX files, %d problems" % (kernels, len(paths), count))
    if kernels < min_kernels:
        print("check_ptx_wait_first: expected at least %d kernels: is the PTX complete?" % min_kernels)
        return 1
    return 1 if count else 0


# ---- self-test: the checker on small samples ------------------------------------------------------------

GOOD = """
.visible .entry good(
    .param .u64 good_param_0
)
{
    ld.param.u64 %rd1, [good_param_0];
    @%p1 bra $L__BB0_2;
    cp.async.bulk.prefetch.L2.global [%rd1], 4096;
    prefetch.L2 [%rd1];
$L__BB0_2:
    griddepcontrol.wait;
    griddepcontrol.launch_dependents;
    ld.global.nc.f32 %f1, [%rd1];
    st.global.f32 [%rd1], %f1;
    ret;
}
"""
BAD = {
    "a global load before the wait": GOOD.replace("    prefetch.L2 [%rd1];\n",
                                                  "    ld.global.nc.v4.u32 {%r1,%r2,%r3,%r4}, [%rd1];\n"),
    "a predicated global store before the wait": GOOD.replace("    prefetch.L2 [%rd1];\n",
                                                              "    @%p2 st.global.f32 [%rd1], %f1;\n"),
    "a generic load before the wait": GOOD.replace("    prefetch.L2 [%rd1];\n", "    ld.u32 %r1, [%rd1];\n"),
    "an asynchronous copy from global before the wait": GOOD.replace(
        "    prefetch.L2 [%rd1];\n", "    cp.async.cg.shared.global [%r1], [%rd1], 16, %r2;\n"),
    "an atomic before the wait": GOOD.replace("    prefetch.L2 [%rd1];\n", "    atom.global.add.u32 %r1, [%rd1], 1;\n"),
    "a call before the wait": GOOD.replace("    prefetch.L2 [%rd1];\n", "    call.uni (%r1), load_it, (%rd1);\n"),
    "a load in an inline-asm scope": GOOD.replace("    prefetch.L2 [%rd1];\n",
                                                  "    { ld.global.nc.b16 %rs1, [%rd1];}\n"),
    "a wmma load from global memory": GOOD.replace(
        "    prefetch.L2 [%rd1];\n",
        "    wmma.load.a.sync.aligned.row.m16n16k16.global.f16 {%r1,%r2,%r3,%r4,%r5,%r6,%r7,%r8}, [%rd1], %r9;\n"),
    "an L1 prefetch before the wait": GOOD.replace("    prefetch.L2 [%rd1];\n", "    prefetch.global.L1 [%rd1];\n"),
    "a surface reduction before the wait": GOOD.replace("    prefetch.L2 [%rd1];\n",
                                                        "    sured.b.add.u32.trap [%rd1, {%r1}], %r2;\n"),
    "a load with a cache qualifier": GOOD.replace("    prefetch.L2 [%rd1];\n",
                                                  "    ld.global.L1::no_allocate.u32 %r1, [%rd1];\n"),
    "an L2 discard before the wait": GOOD.replace("    prefetch.L2 [%rd1];\n", "    discard.global.L2 [%rd1], 128;\n"),
    "a wait only some threads reach": GOOD.replace("    griddepcontrol.wait;\n", "    @%p3 griddepcontrol.wait;\n"),
    "no wait": GOOD.replace("    griddepcontrol.wait;\n", ""),
    "a branch past the wait": GOOD.replace("    @%p1 bra $L__BB0_2;\n", "    @%p1 bra $L__BB0_9;\n").replace(
        "    ld.global.nc.f32", "$L__BB0_9:\n    ld.global.nc.f32"),
    "a block laid out after the wait that loads, then branches back before it": GOOD.replace(
        "    @%p1 bra $L__BB0_2;\n", "    @%p1 bra $L__BB0_7;\n$L__BB0_8:\n").replace(
        "    ret;\n", "    ret;\n$L__BB0_7:\n    ld.global.u32 %r1, [%rd1];\n    bra.uni $L__BB0_8;\n"),
}
# Laid out like the compiler lays out a prefetch (after the wait, branching back): not a problem.
GOOD_LAID_OUT_LATER = GOOD.replace("    @%p1 bra $L__BB0_2;\n", "    @%p1 bra $L__BB0_7;\n$L__BB0_8:\n").replace(
    "    ret;\n", "    ret;\n$L__BB0_7:\n    prefetch.L2 [%rd1];\n    bra.uni $L__BB0_8;\n")


def self_test():
    ok = True
    for sample in (GOOD, GOOD_LAID_OUT_LATER):
        for name, lines in kernels_of(sample):
            problems = problems_of(name, lines)
            if problems:
                print("self-test FAIL: a good sample was refused: %s" % problems)
                ok = False
    for what, sample in BAD.items():
        kernels = kernels_of(sample)
        if len(kernels) != 1 or not problems_of(*kernels[0]):
            print("self-test FAIL: %s was not found" % what)
            ok = False
    print("check_ptx_wait_first self-test: %d bad samples, %s" % (len(BAD), "all found" if ok else "FAILED"))
    return 0 if ok else 1


def main(argv):
    if argv == ["--self-test"]:
        return self_test()
    min_kernels = 1
    if len(argv) >= 2 and argv[0] == "--min-kernels":
        min_kernels = int(argv[1])
        argv = argv[2:]
    if not argv:
        print(__doc__)
        return 2
    return check(argv, min_kernels)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
