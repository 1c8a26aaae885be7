"""`gateway demo --points GLOB` as a person runs it: only those readings on the console, and the
rule reloads, rejections and overrides they cause shown at the default log level."""

import queue
import re
import signal
import subprocess
import sys
import threading
import time

READING_LINE = re.compile(r"^\d\d:\d\d:\d\d  (\S+)\s")


def pump(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)


def wait_line(lines: queue.Queue, seen: list, predicate, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if predicate(line):
            return line
    raise AssertionError(f"no such line in time; seen: {''.join(seen)[-3000:]}")


def test_demo_points_filter_and_operator_events(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--data-dir", str(tmp_path), "--points", "lamp-*/level"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out_lines, err_lines = queue.Queue(), queue.Queue()
    out_seen, err_seen = [], []
    for stream, into in ((proc.stdout, out_lines), (proc.stderr, err_lines)):
        threading.Thread(target=pump, args=(stream, into), daemon=True).start()
    try:
        wait_line(out_lines, out_seen, lambda line: line.startswith("Ctrl-C to stop"), timeout=90)
        for _ in range(4):
            wait_line(out_lines, out_seen, lambda line: READING_LINE.match(line) is not None)

        rules = tmp_path / "rules" / "street_lighting.toml"
        rules.write_text(rules.read_text() + "\n# edited on site\n")
        wait_line(
            err_lines, err_seen, lambda line: "event=rules_loaded" in line and "street_lighting" in line
        )
        (tmp_path / "rules" / "broken.toml").write_text("[[rules]\nname = \n")
        wait_line(err_lines, err_seen, lambda line: "event=rules_rejected" in line and "broken.toml" in line)
        override = subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway",
                "override",
                "lamp-1/level",
                "80",
                "--for",
                "10m",
                "-c",
                str(tmp_path / "site.toml"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert override.returncode == 0, override.stderr
        wait_line(
            err_lines, err_seen, lambda line: "event=override_started" in line and "lamp-1/level" in line
        )

        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    time.sleep(0.2)  # let the pumps take the last lines
    while not out_lines.empty():
        out_seen.append(out_lines.get())
    points = {m.group(1) for line in out_seen if (m := READING_LINE.match(line))}
    assert points and all(re.fullmatch(r"lamp-[^/]+/level", p) for p in points), points
    # the default level stays quiet otherwise: no routine info lines
    assert not any("level=info" in line and "event=write " in line for line in err_seen)
