"""tools/gpu_timing/timeline.py on a trace written here: six steps of three graph kernels and a head each."""

import subprocess
import sys
from pathlib import Path

TIMELINE = Path(__file__).resolve().parent.parent / "tools" / "gpu_timing" / "timeline.py"


def write_trace(path, calls=True):
    lines = []
    for step in range(6):
        launch = 1_000_000 + step * 100_000  # ns: a step every 100 us
        if calls:
            lines.append("call,%d,%d,514,0,0,0,cuGraphLaunch" % (launch, launch + 5_000))
        # norm 2 us, product 6 us starting 1 us into the norm, attention 10 us starting at the product's end
        start = launch + 10_000
        lines.append("kernel,%d,%d,1,1,320,1,rms_norm" % (start, start + 2_000))
        lines.append("kernel,%d,%d,480,1,256,1,product" % (start + 1_000, start + 7_000))
        lines.append("kernel,%d,%d,20,32,256,1,attention" % (start + 7_000, start + 17_000))
        # the head, launched after the graph, starts early and ends 43 us after attention
        lines.append("kernel,%d,%d,128,1,256,0,head" % (start + 12_000, start + 60_000))
    path.write_text("\n".join(lines) + "\n")


def test_each_kernel_is_charged_what_it_adds_to_the_critical_path(tmp_path):
    trace = tmp_path / "trace.csv"
    write_trace(trace)
    result = subprocess.run([sys.executable, str(TIMELINE), str(trace), "--sequence", "4"],
                            capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("3 steps: 100.0 us from one step's launch to the next, kernels spanning 60.0 us, "
                               "4 kernels a step"), lines[0]
    # A step's last kernel ends 70 us after the step's launch, and the next step's first kernel starts at 110 us.
    assert lines[1].startswith("the GPU from a step's last kernel to the next step's first: 40.0 us"), lines[1]
    rows = {line.split()[0]: line.split() for line in lines[3:7]}
    assert rows["head"][-3:] == ["48.00", "43.00", "43.0"] and rows["head"][2] == "*"
    assert rows["attention"][-3:] == ["10.00", "10.00", "10.0"]
    assert rows["product"][-3:] == ["6.00", "5.00", "5.0"]
    assert lines[-1].split()[3:] == ["+43.0", "head", "128x1/256", "*"]


def test_a_trace_without_graph_steps_is_refused_with_its_name(tmp_path):
    trace = tmp_path / "empty.csv"
    trace.write_text("call,1,2,0,0,0,0,cuInit\n")
    result = subprocess.run([sys.executable, str(TIMELINE), str(trace)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "fewer than 4 graph-launched steps" in result.stderr and "empty.csv" in result.stderr


def test_a_trace_without_driver_calls_begins_steps_at_their_graph_kernels(tmp_path):
    trace = tmp_path / "trace.csv"
    write_trace(trace, calls=False)
    result = subprocess.run([sys.executable, str(TIMELINE), str(trace)], capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("3 steps: 100.0 us from one step's first kernel to the next, kernels spanning 60.0 us, "
                               "4 kernels a step"), lines[0]
    assert lines[1].startswith("the GPU from a step's last kernel to the next step's first: 40.0 us"), lines[1]
