"""tools/bench_prompts.py against `onebit serve` on the built-in model."""

import re
import subprocess
import sys
from pathlib import Path

from running_server import RunningServer

TOOL = Path(__file__).resolve().parent.parent / "tools" / "bench_prompts.py"


def test_it_reports_each_round_of_concurrent_prompts():
    server = RunningServer([])
    try:
        result = subprocess.run(
            [sys.executable, str(TOOL), "--url", server.url, "--requests", "3", "--words", "20", "--rounds", "2"],
            capture_output=True, text=True, check=True, timeout=120)
    finally:
        server.stop()
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2, result.stdout
    for index, line in enumerate(lines):
        match = re.fullmatch(r"round (\d): 3 prompts of (\d+) tokens in [\d.]+ s, (\d+) prompt tokens/s, "
                             r"slowest request [\d.]+ s", line)
        assert match, line
        assert int(match.group(1)) == index + 1
        assert int(match.group(2)) > 20 and int(match.group(3)) > 0


def test_a_server_that_is_not_there_is_an_error():
    result = subprocess.run([sys.executable, str(TOOL), "--url", "http://127.0.0.1:9", "--rounds", "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "no server answered at http://127.0.0.1:9" in result.stderr, result.stderr


def test_requests_the_server_refuses_fail_the_run_with_its_reason():
    server = RunningServer([])
    try:
        result = subprocess.run(
            [sys.executable, str(TOOL), "--url", server.url, "--requests", "2", "--words", "3000", "--rounds", "1"],
            capture_output=True, text=True, timeout=120)
    finally:
        server.stop()
    assert result.returncode != 0
    assert "2 of 2 requests failed" in result.stderr, result.stderr
    assert "context_length_exceeded" in result.stderr, result.stderr
