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


def test_a_prompt_is_the_eager_run_with_the_most_prompt_attention(tmp_path):
    trace = tmp_path / "prompt.csv"
    lines = ["kernel,0,900000,4096,1,256,0,copy_words"]  # a long upload, 0.9 ms, then 100 us idle
    start = 1_000_000
    for layer in range(3):  # per layer: norm 5 us, product 20 us starting 2 us into it, attention 30 us after
        lines.append("kernel,%d,%d,512,1,320,0,rms_norm_quantize_wide" % (start, start + 5_000))
        lines.append("kernel,%d,%d,20,8,256,0,ternary_matmul_wgmma" % (start + 2_000, start + 25_000))
        lines.append("kernel,%d,%d,5,32,256,0,attention_prefill_mma" % (start + 25_000, start + 55_000))
        start += 55_000
    lines.append("kernel,%d,%d,1,1,256,1,argmax" % (start + 200_000, start + 201_000))  # a graph kernel after
    trace.write_text("\n".join(lines) + "\n")
    result = subprocess.run([sys.executable, str(TIMELINE), str(trace), "--prompt"], capture_output=True, text=True,
                            check=True)
    out = result.stdout.splitlines()
    assert out[0] == ("the prompt: 9 kernels over 165.0 us, 3 of them attention, run 2 of 2 launched apart from "
                      "graphs"), out[0]
    rows = {line.split()[0]: line.split() for line in out[2:5]}
    assert rows["attention_prefill_mma"][-4:] == ["3", "30.00", "30.00", "90.0"]
    assert rows["ternary_matmul_wgmma"][-4:] == ["3", "23.00", "20.00", "60.0"]
    assert rows["rms_norm_quantize_wide"][-4:] == ["3", "5.00", "5.00", "15.0"]


def test_a_trace_without_a_prompt_is_refused_with_its_name(tmp_path):
    trace = tmp_path / "decode.csv"
    trace.write_text("kernel,0,1000,1,1,256,0,attention_split\n")
    result = subprocess.run([sys.executable, str(TIMELINE), str(trace), "--prompt"], capture_output=True, text=True)
    assert result.returncode != 0
    assert "trace a prompt" in result.stderr and "decode.csv" in result.stderr
