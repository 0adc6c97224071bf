#!/usr/bin/env python3
"""Reads the CSV that kernel_trace.c writes and tells where a decoding step's time goes.

For the steps launched as CUDA graphs (one graph launch each, after the first steps that record them) it prints:
the time from one step's graph launch to the next, the span of the step's kernels on the GPU (the graph's and
those launched after it, such as the output head and the sampler, marked *), how long the GPU then waits for the
next step, and for each kernel (by name and grid) how many run per step, how long each runs and how much each moves
the end of the step's critical path: its end minus the end of the kernel before it, which is what the step would
save without it when kernels overlap their predecessors. A kernel's length counts from when it started, which
with programmatic dependent launch is before its predecessor ended; the path share does not. `--sequence N` lists
the first N kernels of one late step in order.

A trace without driver calls (TRACE_NO_CALLS=1), whose wait between steps is not inflated by recording them, has
no graph launches to begin steps with: a step then begins at each run of graph kernels, and its period is measured
from its first kernel.

`--prompt` reads a prompt instead (prompts run eagerly; `onebit bench -p 512 -n 1 -r 1` traces one): of the runs of
kernels launched apart from graphs, parted where the GPU idles for more than 50 us, the one with the most launches
of the prompt attention kernels (or of the kernels named, commas between, such as `attention` for heads no prefill
kernel takes), and for each kernel the same columns over that run, per launch.

    python3 tools/gpu_timing/timeline.py trace.csv [--sequence 20 | --prompt [KERNELS]]
"""

import argparse
import collections
import statistics


def read(path):
    kernels, calls = [], []
    with open(path) as lines:
        for line in lines:
            kind, start, end, a, b, c, graph, name = line.rstrip("\n").split(",", 7)
            if kind == "kernel":
                kernels.append((int(start), int(end), name, int(a), int(b), int(c), graph == "1"))
            elif kind == "call":
                calls.append((int(start), int(end), name))
    kernels.sort()
    return kernels, calls


def graph_steps(kernels, calls):
    """The kernels of each step, with when it began: those starting between the graph launch that starts it and
    the next; without launches in the trace, from each graph kernel that follows a kernel launched apart."""
    launches = sorted(c[0] for c in calls if c[2] == "cuGraphLaunch")
    if not launches:
        launches = [k[0] for before, k in zip([None] + kernels[:-1], kernels) if k[6] and not (before and before[6])]
    steps, index = [], 0
    for i, launch in enumerate(launches):
        following = launches[i + 1] if i + 1 < len(launches) else float("inf")
        step = []
        while index < len(kernels) and kernels[index][0] < following:
            if kernels[index][0] >= launch:
                step.append(kernels[index])
            index += 1
        if any(k[6] for k in step):
            steps.append((launch, step))
    return steps


def eager_runs(kernels, gap=50_000):
    """The kernels launched apart from graphs, in runs parted where the GPU idles more than `gap` ns."""
    runs, end = [], None
    for kernel in kernels:
        if kernel[6]:
            continue
        if end is None or kernel[0] - end > gap:
            runs.append([])
            end = kernel[1]
        runs[-1].append(kernel)
        end = max(end, kernel[1])
    return runs


PROMPT_ATTENTION = "attention_prefill,attention_prefill_mma,attention_prefill_mma_wide,attention_prefill_mma_short"


def report_prompt(kernels, trace, marker):
    runs = eager_runs(kernels)
    names = set(marker.split(","))
    marked = [sum(k[2] in names for k in r) for r in runs]
    if not runs or max(marked) == 0:
        raise SystemExit("no run of kernels launched apart from graphs has %s in %s: trace a prompt" % (marker, trace))
    index = marked.index(max(marked))
    run = runs[index]
    print("the prompt: %d kernels over %.1f us, %d of them attention, run %d of %d launched apart from graphs"
          % (len(run), (max(k[1] for k in run) - run[0][0]) / 1e3, marked[index], index + 1, len(runs)))
    durations, increments, end = collections.defaultdict(list), collections.defaultdict(list), run[0][0]
    for kernel in run:
        durations[label(kernel)].append(kernel[1] - kernel[0])
        increments[label(kernel)].append(max(0, kernel[1] - end))
        end = max(end, kernel[1])
    print_kernels(durations, increments, 1, ("launches", "us in all"))


def print_kernels(durations, increments, repeats, columns):
    """A row per kernel, the largest share of the critical path first: how many run per step (or in all, where
    `repeats` is 1), how long each runs, and what each adds to the path, on average and per step (or in all)."""
    print("%-50s %9s %9s %14s %12s" % ("kernel", columns[0], "us each", "us on the path", columns[1]))
    for key in sorted(durations, key=lambda k: -sum(increments.get(k, [0]))):
        added = increments.get(key, [0])
        count = "%d" % len(durations[key]) if repeats == 1 else "%.1f" % (len(durations[key]) / repeats)
        print("%-50s %9s %9.2f %14.2f %12.1f" % (key, count, statistics.mean(durations[key]) / 1e3,
              statistics.mean(added) / 1e3, sum(added) / repeats / 1e3))


def label(kernel):
    return "%s %dx%d/%d%s" % (kernel[2][:36], kernel[3], kernel[4], kernel[5], "" if kernel[6] else " *")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("trace")
    parser.add_argument("--sequence", type=int, default=0, help="list the first N kernels of one late step")
    parser.add_argument("--prompt", nargs="?", const=PROMPT_ATTENTION, metavar="KERNELS",
                        help="read the run of kernels launched apart from graphs with the most of these launches")
    arguments = parser.parse_args()
    kernels, calls = read(arguments.trace)
    if arguments.prompt:
        report_prompt(kernels, arguments.trace, arguments.prompt)
        return
    steps = graph_steps(kernels, calls)
    if len(steps) < 4:
        raise SystemExit("fewer than 4 graph-launched steps in %s: trace a longer run" % arguments.trace)
    # The first steps run eagerly or are being recorded; the last may be cut short.
    steady = steps[2:-1]
    periods = [b[0] - a[0] for a, b in zip(steady, steady[1:])]
    spans = [max(k[1] for k in s) - s[0][0] for _, s in steady]
    waits = [b[1][0][0] - max(k[1] for k in a[1]) for a, b in zip(steady, steady[1:])]
    began = "launch" if any(c[2] == "cuGraphLaunch" for c in calls) else "first kernel"
    print("%d steps: %.1f us from one step's %s to the next, kernels spanning %.1f us, %d kernels a step"
          % (len(steady), statistics.mean(periods) / 1e3, began, statistics.mean(spans) / 1e3, len(steady[0][1])))
    print("the GPU from a step's last kernel to the next step's first: %.1f us; * launched after the graph"
          % (statistics.mean(waits) / 1e3))
    durations, increments = collections.defaultdict(list), collections.defaultdict(list)
    for _, step in steady:
        for before, kernel in zip([None] + step[:-1], step):
            durations[label(kernel)].append(kernel[1] - kernel[0])
            if before is not None:
                increments[label(kernel)].append(kernel[1] - before[1])
    print_kernels(durations, increments, len(steady), ("per step", "us a step"))
    if arguments.sequence:
        _, step = steady[-1]
        origin, previous_end = step[0][0], step[0][0]
        print("\none step, in order (us from its first kernel): start, length, end, end moved by")
        for kernel in step[: arguments.sequence]:
            print("%8.1f %7.1f %8.1f %+7.1f  %s" % ((kernel[0] - origin) / 1e3, (kernel[1] - kernel[0]) / 1e3,
                  (kernel[1] - origin) / 1e3, (kernel[1] - previous_end) / 1e3, label(kernel)))
            previous_end = kernel[1]


if __name__ == "__main__":
    main()
