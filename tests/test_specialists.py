"""The specialists from the outside: `onebit specialists run` on real git repositories, the HTTP routes of a real
`onebit serve` (with a watched repository that produces a report without any request), and `serve --supervise`
bringing a killed server back.
"""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from running_server import BINARY, RunningServer


# Fake credentials in the documented formats; each is planted in its own file so a finding names where it is.
PLANTED = {
    "aws-access-key-id": ("deploy/aws.env", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n"),
    "aws-secret-access-key": ("deploy/aws_secret.env", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"),
    "private-key": (
        "keys/id_rsa",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq3Vz3l0Jb2Jz9f0iN0dUa9Qk7xM2q8mWcT1L5pYxR3sE6k\n"
        "-----END RSA PRIVATE KEY-----\n",
    ),
    "github-token": ("ci/token.txt", "GITHUB_TOKEN=ghp_" + "aB3" * 12 + "\n"),
    "slack-token": ("hooks/slack.cfg", "webhook_token: xoxb-1234567890-abcdefghijkl\n"),
    "google-api-key": ("web/maps.js", 'const key = "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q";\n'),
    "openai-api-key": ("app/.env", "OPENAI_API_KEY=sk-proj-abcdEFGH1234ijklMNOP5678\n"),
    "jwt": (
        "docs/example.http",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U\n",
    ),
}

CLEAN = {
    "README.md": "# demo\n\nBuilt from commit 4b825dc642cb6eb9a060e54bf8d69288fbee4904.\n",
    "src/main.py": "import hashlib\n\nDIGEST = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'\nprint('hello')\n",
    "package-lock.json": '{"integrity": "sha512-Vt4nBNQ1vTqA7Ww5c6J3sJp2bD7jM1Z0eOQ4c8mJtLGdP3s8J9kq=="}\n',
}


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def make_repo(path, files, message="feat: add files"):
    os.makedirs(path, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "test@example.com")
    git(path, "config", "user.name", "Test")
    git(path, "config", "commit.gpgsign", "false")
    commit(path, files, message)
    return str(path)


def commit(path, files, message):
    for name, text in files.items():
        full = os.path.join(path, name)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as f:
            f.write(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", message)


def run_specialist(config, name, payload):
    result = subprocess.run(
        [BINARY, "specialists", "run", name, "--device", "cpu", "--input", json.dumps(payload)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ONEBIT_CONFIG_DIR": str(config)},
    )
    return result


def test_magistrate_finds_every_planted_secret(tmp_path):
    repo = make_repo(tmp_path / "leaky", CLEAN)
    commit(repo, {path: text for path, text in PLANTED.values()}, "chore: add config")
    result = run_specialist(tmp_path / "config", "magistrate", {"repository": repo})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    output = report["output"]
    found = {(f["rule"], f["file"]) for f in output["findings"]}
    assert found == {(rule, path) for rule, (path, _) in PLANTED.items()}
    assert output["secrets_found"] == len(PLANTED) and output["clean"] is False
    assert all(f["line"] == 1 for f in output["findings"])
    # Secrets are never repeated in full in the report.
    assert "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" not in result.stdout
    # The report was kept under the configuration directory.
    assert os.path.exists(tmp_path / "config" / "reports" / (report["id"] + ".json"))


def test_magistrate_flags_nothing_in_a_clean_repository(tmp_path):
    repo = make_repo(tmp_path / "clean", CLEAN, "docs: describe the demo")
    commit(repo, {"src/util.py": "def add(a, b):\n    return a + b\n"}, "feat(util): add a helper")
    result = run_specialist(tmp_path / "config", "magistrate", {"repository": repo})
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)["output"]
    assert output["findings"] == [] and output["secrets_found"] == 0
    assert output["bad_commits"] == 0 and output["clean"] is True
    assert [c["header"] for c in output["commits"]] == ["feat(util): add a helper", "docs: describe the demo"]


def test_the_cli_names_the_bad_field_and_the_unknown_specialist(tmp_path):
    result = run_specialist(tmp_path, "quartermaster", {"title": 3})
    assert result.returncode != 0 and "input.title: must be string" in result.stderr
    result = run_specialist(tmp_path, "oracle", {})
    assert result.returncode != 0 and "no specialist is named 'oracle'" in result.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url, method="GET", body=None, timeout=60):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


class Server(RunningServer):
    """`onebit serve` on the built-in model with its own configuration directory."""

    def __init__(self, config, *extra):
        super().__init__(
            ["--device", "cpu", "--ctx", "512", *extra], env={**os.environ, "ONEBIT_CONFIG_DIR": str(config)}
        )


@pytest.fixture(scope="module")
def watched(tmp_path_factory):
    base = tmp_path_factory.mktemp("serve")
    repo = make_repo(base / "project", {"status": "pass\n"})
    server = Server(base / "config", "--watch", repo + "=grep -q pass status", "--watch-interval", "1")
    yield server, repo, base
    server.stop()


def test_post_magistrate_on_a_running_server(watched):
    server, _, _ = watched
    diff = "\n".join(
        [
            "diff --git a/deploy/aws.env b/deploy/aws.env",
            "--- a/deploy/aws.env",
            "+++ b/deploy/aws.env",
            "@@ -0,0 +1,2 @@",
            "+AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
            "+aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ]
    )
    status, report = request(server.url + "/v1/specialists/magistrate", "POST", {"diff": diff})
    assert status == 200, report
    rules = [(f["rule"], f["line"]) for f in report["output"]["findings"]]
    assert rules == [("aws-access-key-id", 1), ("aws-secret-access-key", 2)]
    assert isinstance(report["output"]["explanation"], str) and report["output"]["explanation"]

    status, listed = request(server.url + "/v1/reports?specialist=magistrate")
    assert status == 200 and report["id"] in [r["id"] for r in listed["data"]]
    status, again = request(server.url + "/v1/reports/" + report["id"])
    assert status == 200 and again == report

    status, clean = request(server.url + "/v1/specialists/magistrate", "POST", {"diff": "+let x = 1\n"})
    assert status == 200 and clean["output"]["findings"] == [] and clean["output"]["clean"] is True


def test_http_errors_name_the_problem(watched):
    server, _, _ = watched
    status, error = request(server.url + "/v1/specialists/oracle", "POST", {})
    assert status == 404 and error["error"]["code"] == "specialist_not_found"
    status, error = request(server.url + "/v1/specialists/quartermaster", "POST", {"title": "x", "colour": 1})
    assert status == 400 and error["error"]["param"] == "colour"
    status, error = request(server.url + "/v1/specialists/anvil", "POST", {"repository": "/tmp"})
    assert status == 400 and error["error"]["param"] == "command"
    status, error = request(server.url + "/v1/reports/none")
    assert status == 404 and error["error"]["code"] == "report_not_found"
    status, listed = request(server.url + "/v1/specialists")
    names = [s["name"] for s in listed["data"]]
    assert names[:6] == ["magistrate", "librarian", "quartermaster", "anvil", "sentinel", "scribe"]
    assert any(n.startswith("anvil-") for n in names[6:])


def test_a_new_commit_of_a_watched_repository_produces_a_report_unasked(watched):
    server, repo, base = watched
    time.sleep(2)  # the watcher's first look records the HEAD it starts from
    commit(repo, {"status": "pass\nagain\n"}, "fix: keep passing")
    head = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    deadline = time.time() + 90
    reports = []
    while time.time() < deadline:
        _, listed = request(server.url + "/v1/reports")
        reports = [r for r in listed["data"] if r["trigger"] == "git-commit"]
        if reports:
            break
        time.sleep(0.5)
    assert reports, "no report for the new commit"
    output = reports[0]["output"]
    assert output["commit"] == head and output["status"] == "pass" and output["exit_status"] == 0
    assert os.path.exists(base / "config" / "reports" / (reports[0]["id"] + ".json"))


def children_of(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return found


def test_supervise_restarts_a_killed_server(tmp_path):
    port = free_port()
    parent = subprocess.Popen(
        [BINARY, "serve", "--device", "cpu", "--port", str(port), "--ctx", "256", "--supervise"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ONEBIT_CONFIG_DIR": str(tmp_path)},
    )
    health = f"http://127.0.0.1:{port}/health"

    def wait_healthy():
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if request(health, timeout=2)[0] == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.2)
        return False

    try:
        assert wait_healthy(), "the supervised server did not come up"
        [child] = children_of(parent.pid)
        os.kill(child, signal.SIGKILL)
        time.sleep(0.5)
        assert wait_healthy(), "the server was not restarted"
        [restarted] = children_of(parent.pid)
        assert restarted != child
    finally:
        parent.terminate()
        parent.wait(timeout=30)
    assert children_of(parent.pid) == []
