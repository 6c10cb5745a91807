"""--viz against a real Visdom server (a subprocess on a free loopback port) and real training subprocesses."""
from __future__ import annotations

import csv
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from _visdom_server import ROOT, TINY, answers, free_port, train_command, visdom_server, window

pytest.importorskip("visdom", reason="visdom is not installed: PIP_CONSTRAINT=constraints.txt pip install visdom")


def traces(port: int, env: str, win: str) -> dict[str, tuple[list[float], list[float]]]:
    data = window(port, env, win)
    return {t["name"]: (t["x"], t["y"]) for t in data.get("content", {}).get("data", [])}


def points_so_far(port: int, env: str) -> int:
    """Points of the total-loss trace on the server; 0 while a loaded server drops the test's request."""
    try:
        return len(traces(port, env, "losses").get("total", ([], []))[0])
    except ConnectionError:
        return 0


def logged(csv_path: Path) -> list[dict[str, float]]:
    with open(csv_path) as file:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(file)]


def assert_matches_log(port: int, env: str, rows: list[dict[str, float]]) -> None:
    """Every logged iteration is on the server, with the values the trainer logged."""
    iterations = [row["iteration"] for row in rows]
    losses = traces(port, env, "losses")
    assert sorted(losses) == ["content", "style", "total", "tv"]
    for name, (xs, ys) in losses.items():
        assert xs == iterations, name
        assert ys == pytest.approx([row[name] for row in rows], rel=1e-12), name
    layers = traces(port, env, "style_layers")
    assert sorted(layers) == sorted(k[len("style_"):] for k in rows[0] if k.startswith("style_"))
    for name, (xs, ys) in layers.items():
        assert xs == iterations and ys == pytest.approx([row[f"style_{name}"] for row in rows], rel=1e-12)
    assert traces(port, env, "lr")["lr"][1] == pytest.approx([row["lr"] for row in rows])
    speed = traces(port, env, "throughput")["images/s"]
    assert speed[0] == iterations and all(v > 0 for v in speed[1])


def test_run_is_streamed_to_a_real_server(tmp_path: Path) -> None:
    port = free_port()
    with visdom_server(port, tmp_path / "envs"):
        result = subprocess.run(train_command(port, tmp_path / "ck", "vizrun", 4, "--viz_every", "2", "--save_every", "3"),
                                cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert "lost the server" not in result.stderr and "not sent" not in result.stderr
        rows = logged(tmp_path / "ck" / "vizrun_losses.csv")
        assert len(rows) == 4
        assert_matches_log(port, "vizrun", rows)
        samples = window(port, "vizrun", "samples")
        assert samples["type"] == "image" and samples["content"]["src"].startswith("data:image/png;base64,")
        # the final checkpoint's grid, the newest; no caption (visdom 0.2.4 would draw it twice)
        assert samples["title"] == "samples at iteration 4 (inputs on top, stylised below, fixed noise)"
        assert "caption" not in samples
        text = window(port, "vizrun", "config")["content"]
        assert str(tmp_path / "ck" / "vizrun_iter3.pth") in text and str(tmp_path / "ck" / "vizrun.pth") in text
        assert "&quot;image_size&quot;: 32" in text  # the full configuration, HTML-escaped


def test_unreachable_server_is_one_clear_line_before_any_model(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    result = subprocess.run(train_command(port, tmp_path / "ck", "nothere", 2), cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert f"no Visdom server answers at http://127.0.0.1:{port}" in errors[0]
    assert f"texturenet-visdom --port {port}" in errors[0]
    assert "training 'nothere'" not in result.stdout + result.stderr  # stopped before building the models
    assert not list((tmp_path / "ck").glob("*.pth"))


def wait_for(condition, process: subprocess.Popen, lines: list[str], what: str, timeout: float = 180) -> None:
    """Poll ``condition`` while ``process`` runs; fail with its output if it ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"training ended before {what}:\n" + "".join(lines)
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n" + "".join(lines)
        time.sleep(0.05)


@pytest.mark.slow
def test_server_killed_mid_run_then_back(tmp_path: Path) -> None:
    """The server dies mid-run: training warns once and goes on; a new (empty) server gets everything.

    Training is paused (SIGSTOP) around each server change, so the test controls the order of events
    whatever the machine's speed: the kill lands while training runs, and the new server starts while
    iterations are still to come.
    """
    port = free_port()
    iterations = 30
    lines: list[str] = []
    with visdom_server(port, tmp_path / "envs") as server:
        training = subprocess.Popen(train_command(port, tmp_path / "ck", "killed", iterations), cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        reader = threading.Thread(target=lambda: lines.extend(training.stderr), daemon=True)  # type: ignore[arg-type]
        reader.start()
        try:
            wait_for(lambda: points_so_far(port, "killed") >= 2, training, lines, "two points reached the server")
            training.send_signal(signal.SIGSTOP)
            server.kill()
            server.wait()
            assert not answers(port)
        finally:
            training.send_signal(signal.SIGCONT)
    try:
        wait_for(lambda: any("lost the server" in line for line in lines), training, lines, "it noticed the loss")
        training.send_signal(signal.SIGSTOP)  # hold training while a fresh server starts
        with visdom_server(port, tmp_path / "envs-new"):
            training.send_signal(signal.SIGCONT)
            assert training.wait(300) == 0, "".join(lines)
            reader.join(10)
            output = "".join(lines)
            assert output.count("lost the server") == 1 and "is back; plots resumed" in output, output
            assert "not sent" not in output, output
            assert (tmp_path / "ck" / "killed.pth").is_file()
            rows = logged(tmp_path / "ck" / "killed_losses.csv")
            assert len(rows) == iterations
            assert_matches_log(port, "killed", rows)  # redrawn whole on the new server: nothing lost
            assert window(port, "killed", "samples")["title"].startswith(f"samples at iteration {iterations} ")
    finally:
        training.send_signal(signal.SIGCONT)
        if training.poll() is None:
            training.kill()


@pytest.mark.slow
def test_resumed_run_plots_the_whole_run(tmp_path: Path) -> None:
    """--resume with --viz, to a server that never saw the first part: the plots hold every iteration."""
    port = free_port()
    with visdom_server(port, tmp_path / "envs"):
        first = subprocess.run(train_command(port, tmp_path / "ck", "resumed", 3), cwd=ROOT, capture_output=True,
                               text=True, timeout=300)
        assert first.returncode == 0, first.stderr
    with visdom_server(port, tmp_path / "envs-new"):
        second = subprocess.run(train_command(port, tmp_path / "ck", "resumed", 6, "--resume", "auto"), cwd=ROOT,
                                capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stderr
        rows = logged(tmp_path / "ck" / "resumed_losses.csv")
        assert [row["iteration"] for row in rows] == [1, 2, 3, 4, 5, 6]
        losses = traces(port, "resumed", "losses")
        for name, (xs, ys) in losses.items():
            assert xs == [1, 2, 3, 4, 5, 6] and ys == pytest.approx([row[name] for row in rows], rel=1e-12), name
        assert traces(port, "resumed", "lr")["lr"][0] == [1, 2, 3, 4, 5, 6]
        assert traces(port, "resumed", "throughput")["images/s"][0] == [4, 5, 6]  # not kept in checkpoints


def test_without_viz_visdom_is_never_imported(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / "scripts" / "train.py"), *TINY, "--iterations", "1",
         "--checkpoint_dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert "torch" in imported  # the import log is real
    assert not [m for m in imported if m.split(".")[0] in ("visdom", "requests", "websocket")]
