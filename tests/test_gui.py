"""The browser GUI (``scripts/gui.py``): the real server as a subprocess, its HTTP API, and the page in headless Chromium.

The API tests talk to the server with urllib, as the page does with fetch, sending the token the
server printed as scripts do (``Authorization: token ...``); the browser opens the printed address,
as a user does, and the page's requests carry the cookie it sets. The browser test
drives the page in Chromium through selenium and /usr/bin/chromedriver (Debian packages
``chromium`` and ``chromium-driver``; nothing is downloaded). Without them it is skipped with the
install command (``pytest -ra`` shows it); with TEXTURENET_REQUIRE_BROWSER=1 (CI) it fails instead.

docs/gui.png is this browser test run with a real model:
``TEXTURENET_GUI_MODEL=/work/models/mosaic.pth TEXTURENET_GUI_SCREENSHOT=docs/gui.png pytest tests/test_gui.py -k browser``.
"""
from __future__ import annotations

import base64
import http.client
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import pytest
from PIL import Image

from conftest import BUNDLED_PHOTOS, ROOT, TINY, need_browser, run_script
from texturenet.model.checkpoint import make_checkpoint, save_atomic
from texturenet.config import GeneratorConfig
from texturenet.model.pyramid import PyramidGenerator
from texturenet.apps.gui.server import gui_parser
from texturenet.model.networks import make_generator

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--hide-scrollbars", "--window-size=1400,1200"]


class Gui:
    """A running ``scripts/gui.py``, the address it printed (with its token) and the folders it serves."""

    def __init__(self, printed: str, root: Path, checkpoints: Path, outside: Path, process: subprocess.Popen,
                 output: list[str]) -> None:
        self.printed, self.root, self.checkpoints, self.outside, self.process, self.output = printed, root, checkpoints, outside, process, output
        parts = urllib.parse.urlsplit(printed)
        self.url = f"{parts.scheme}://{parts.netloc}"
        self.token = urllib.parse.parse_qs(parts.query)["token"][0]

    def request(self, path: str, body: Optional[bytes] = None, headers: Optional[dict[str, str]] = None,
                method: Optional[str] = None, token: bool = True) -> tuple[int, str, bytes]:
        """(status, content type, body) of one request, with the token as scripts send it; error statuses are returned, not raised."""
        sent = {"Authorization": f"token {self.token}"} if token else {}
        request = urllib.request.Request(self.url + path, data=body, headers={**sent, **(headers or {})}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.headers.get_content_type(), response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get_content_type(), error.read()

    def get(self, path: str) -> Any:
        status, kind, body = self.request(path)
        assert (status, kind) == (200, "application/json"), body
        return json.loads(body)

    def post_json(self, path: str, fields: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        status, kind, body = self.request(path, json.dumps(fields).encode(), {"Content-Type": "application/json"})
        assert kind == "application/json", body
        return status, json.loads(body)

    def stylize(self, query: str, image: bytes, kind: str = "image/png") -> tuple[int, str, bytes]:
        return self.request(f"/api/stylize?{query}", image, {"Content-Type": kind})

    def models(self) -> dict[str, dict[str, Any]]:
        return {m["name"]: m for m in self.get("/api/models")["models"]}

    def wait_run(self, until: str, timeout: float = 120) -> dict[str, Any]:
        """Poll /api/train, as the page does, until the run's state is ``until`` (or it ended otherwise)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.get("/api/train")
            if status["state"] == until or status["state"] in ("finished", "stopped", "failed"):
                return status
            assert time.monotonic() < deadline, status
            time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def save_random_model(path: Path, mode: str) -> None:
    """A real checkpoint of an untrained tiny generator (what texturenet-train writes, minus the training)."""
    config = GeneratorConfig(mode=mode, scales=3, padding="reflect" if mode == "style" else "circular")
    save_atomic(make_checkpoint(PyramidGenerator(config), path.stem, 0), path)


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def small_photo(size: int) -> Image.Image:
    image = Image.open(BUNDLED_PHOTOS / "chelsea.jpg").convert("RGB")
    image.thumbnail((size, size))
    return image


@pytest.fixture(scope="module")
def gui(tmp_path_factory: pytest.TempPathFactory, photos: Path, style_image: Path) -> Iterator[Gui]:
    base = tmp_path_factory.mktemp("gui")
    root, checkpoints, outside = base / "root", base / "checkpoints", base / "outside"
    shutil.copytree(photos, root / "photos")
    shutil.copy(style_image, root / "style.png")
    (root / "fake.png").write_bytes(b"this is not a PNG")
    outside.mkdir()
    shutil.copy(style_image, outside / "secret.png")
    (root / "escape").symlink_to(outside, target_is_directory=True)  # a symlink inside the root that leads out
    save_random_model(checkpoints / "tinystyle.pth", "style")
    save_random_model(checkpoints / "tinytexture.pth", "texture")
    johnson = GeneratorConfig(generator="johnson", channels=8)
    save_atomic(make_checkpoint(make_generator(johnson), "tinyjohnson", 0), checkpoints / "tinyjohnson.pth")
    residual = GeneratorConfig(scales=3, residual=True)
    save_atomic(make_checkpoint(make_generator(residual), "tinyresidual", 0), checkpoints / "tinyresidual.pth")
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("TEXTURENET_VGG_WEIGHTS", None)
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "gui.py"), "--port", str(port), "--checkpoint_dir", str(checkpoints),
         "--data_root", str(root), "--max_upload_mb", "1", f"--train_args={' '.join(TINY)}"],
        cwd=base, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output: list[str] = []  # read all along, so that the server never blocks on a full pipe
    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    deadline = time.monotonic() + 60
    while not any(line.startswith("texturenet-gui: open ") for line in output):
        assert process.poll() is None and time.monotonic() < deadline, "the GUI server did not start:\n" + "".join(output)
        time.sleep(0.1)
    printed = next(line for line in output if line.startswith("texturenet-gui: open ")).split()[2]
    assert printed.startswith(f"http://127.0.0.1:{port}/?token="), printed
    yield Gui(printed, root.resolve(), checkpoints, outside, process, output)
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    reader.join(10)
    assert process.returncode == 0, "".join(output)  # SIGTERM is a clean stop
    assert "Traceback" not in "".join(output), "".join(output)


def test_lists_models_and_information(gui: Gui) -> None:
    models = gui.models()
    assert models["tinystyle"]["mode"] == "style" and models["tinytexture"]["mode"] == "texture"
    assert models["tinystyle"]["iteration"] == 0 and models["tinystyle"]["final"]
    assert models["tinystyle"]["max_strength"] == 2.0 and models["tinytexture"]["max_strength"] == 0.0  # the slider's range
    info = gui.get("/api/info")
    assert info["data_root"] == str(gui.root) and info["max_upload_bytes"] == 2**20
    assert "photos" in info["folders"] and "style.png" in info["images"]
    # the symlinked folder that leads out is not offered, and /api/info says so and why (it is not silently missing)
    assert "escape" not in info["folders"] and {"path": "escape", "reason": f"a symlink to {gui.outside.resolve()}, outside the "
                                                 f"allowed folder {gui.root}"} in info["not_offered"], info["not_offered"]
    status, kind, page = gui.request("/")
    assert status == 200 and kind == "text/html" and b'id="noise"' in page


def test_lists_and_runs_a_johnson_model(gui: Gui) -> None:
    """--generator johnson models are offered (named as such) and stylise like any style model."""
    model = gui.models()["tinyjohnson"]
    assert (model["mode"], model["generator"], model["max_strength"]) == ("style", "johnson", 2.0)
    assert gui.models()["tinystyle"]["generator"] == "pyramid"
    photo = small_photo(48)
    status, kind, body = gui.stylize("model=tinyjohnson&noise_factor=1.5", png_bytes(photo))
    assert (status, kind) == (200, "image/png"), body
    assert Image.open(io.BytesIO(body)).size == photo.size


def test_a_fresh_residual_model_gives_back_the_photo(gui: Gui) -> None:
    """--residual: the photo plus a change that starts at zero, so an untrained model's picture is the photo at every strength."""
    model = gui.models()["tinyresidual"]
    assert (model["mode"], model["residual"]) == ("style", True) and gui.models()["tinystyle"]["residual"] is False
    photo = small_photo(48)
    for strength in (0, 1.5):
        status, kind, body = gui.stylize(f"model=tinyresidual&noise_factor={strength}", png_bytes(photo))
        assert (status, kind) == (200, "image/png"), body
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(body))), np.asarray(photo))


def test_stylises_an_uploaded_photo(gui: Gui) -> None:
    photo = small_photo(64)
    status, kind, body = gui.stylize("model=tinystyle&noise_factor=0", png_bytes(photo))
    assert (status, kind) == (200, "image/png"), body
    result = Image.open(io.BytesIO(body))
    assert result.format == "PNG" and result.mode == "RGB" and result.size == photo.size
    assert np.abs(np.asarray(result, dtype=float) - np.asarray(photo, dtype=float)).mean() > 5  # the generator changed it
    assert gui.stylize("model=tinystyle&noise_factor=0", png_bytes(photo))[2] == body  # noise 0: deterministic
    noisy = [gui.stylize(f"model=tinystyle&noise_factor=2&seed={seed}", png_bytes(photo))[2] for seed in (1, 1, 2)]
    assert noisy[0] == noisy[1] != noisy[2]  # the seed sets the noise
    jpeg = io.BytesIO()
    photo.save(jpeg, format="JPEG")
    status, _, body = gui.stylize("model=tinystyle", jpeg.getvalue(), "image/jpeg")
    assert status == 200 and Image.open(io.BytesIO(body)).size == photo.size


def test_samples_a_texture_model(gui: Gui) -> None:
    status, kind, body = gui.stylize("model=tinytexture&width=48&height=40", b"", "application/octet-stream")
    assert (status, kind) == (200, "image/png"), body
    assert Image.open(io.BytesIO(body)).size == (48, 40)


def error_of(response: tuple[int, str, bytes]) -> tuple[int, str]:
    status, kind, body = response
    assert kind == "application/json", body
    return status, json.loads(body)["error"]


def test_refuses_bad_stylise_requests(gui: Gui) -> None:
    photo = png_bytes(small_photo(32))
    cases = {
        "model=../checkpoints/tinystyle": (400, "is not a model name"),
        "model=nothere": (400, "no model named 'nothere'"),
        "model=": (400, "is not a model name"),
        "model=tinystyle&noise_factor=abc": (400, "noise_factor: expected a number, got 'abc'"),
        "model=tinystyle&noise_factor=2.5": (400, "noise_factor: 2.5 is out of range; give a value from 0 to 2"),
        "model=tinystyle&noise_factor=nan": (400, "noise_factor: nan is out of range"),
        "model=tinystyle&seed=-1": (400, "seed: -1 is out of range"),
        "model=tinytexture&width=5000": (400, "width: 5000 is out of range; give a value from 16 to 2048"),
    }
    for query, (status, message) in cases.items():
        got = error_of(gui.stylize(query, photo))
        assert got[0] == status and message in got[1], (query, got)
    assert error_of(gui.stylize("model=tinystyle", b"GIF89a but not really")) == (
        400, "photo: the upload is not an image this server can read (UnidentifiedImageError); use a PNG or JPEG")
    assert error_of(gui.stylize("model=tinystyle", b""))[1] == "photo: the upload is empty; choose an image file"
    assert error_of(gui.stylize("model=tinystyle", photo, "application/x-www-form-urlencoded"))[0] == 415
    # a header that promises 2 MiB is refused before any of the body is read (none is sent here)
    connection = http.client.HTTPConnection(gui.url.removeprefix("http://"), timeout=30)
    connection.putrequest("POST", "/api/stylize?model=tinystyle")
    connection.putheader("Authorization", f"token {gui.token}")
    connection.putheader("Content-Type", "image/png")
    connection.putheader("Content-Length", str(2 * 2**20))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"] == "the upload is 2.0 MiB; the limit is 1 MiB"
    connection.close()
    # a client that sends the whole body before reading (urllib, curl) still gets the answer, not a reset connection
    assert error_of(gui.stylize("model=tinystyle", os.urandom(3 * 2**20))) == (413, "the upload is 3.0 MiB; the limit is 1 MiB")
    # huge in pixels, small in bytes: refused from the header, before decoding
    big = png_bytes(Image.new("1", (8000, 8000)))
    assert len(big) < 2**20
    assert error_of(gui.stylize("model=tinystyle", big)) == (400, "photo: 8000x8000 is 64 megapixels; the limit is 50")


def test_refuses_other_sites_and_unknown_pages(gui: Gui) -> None:
    status, message = error_of(gui.request("/api/models", headers={"Host": "attacker.example:80"}))
    assert status == 421 and "is not a name of this server" in message
    status, message = error_of(gui.request("/api/train/stop", b"{}", {"Content-Type": "application/json",
                                                                       "Origin": "http://attacker.example"}))
    assert status == 403 and "other sites" in message
    assert error_of(gui.request("/api/train", b"{}", {"Content-Type": "text/plain"}))[0] == 415
    assert error_of(gui.request("/etc/passwd")) == (404, "no such page: /etc/passwd")
    assert error_of(gui.request("/api/train/samples.png"))[0] in (404, 200)  # 200 only once a run wrote one


def test_refuses_bad_training_forms(gui: Gui) -> None:
    good = {"data_dir": "photos", "style": "style.png", "iterations": 2}
    cases = [
        ({"data_dir": ".."}, "data folder (--data_dir): .. is outside the allowed folder"),
        ({"data_dir": str(gui.outside)}, "is outside the allowed folder"),
        ({"data_dir": "escape"}, "data folder (--data_dir): escape is outside the allowed folder"),  # symlink resolved
        ({"data_dir": "escape"}, f"(the server's --data_root): it resolves through a symlink to {gui.outside.resolve()}"),
        ({"data_dir": "photos/../../outside"}, "is outside the allowed folder"),
        ({"style": "escape/secret.png"}, "style image (--texture): escape/secret.png is outside the allowed folder"),
        ({"data_dir": "nothere"}, "data folder (--data_dir): nothere does not exist under"),
        ({"data_dir": "style.png"}, "style.png is a file; give a folder of training photos"),
        ({"data_dir": ""}, "data folder (--data_dir): give a path under"),
        ({"style": "photos"}, "style image (--texture): photos is a folder; give an image file"),
        ({"style": "fake.png"}, "style image (--texture): fake.png is not an image this server can read"),
        ({"iterations": "many"}, "iterations: expected a whole number, got 'many'"),
        ({"iterations": 0}, "iterations: 0 is out of range; give a value from 1 to 10000000"),
        ({"iterations": None}, "iterations: a value is required"),
        ({"batch_size": 2.5}, "batch_size: expected a whole number, got '2.5'"),
        ({"style_weight": "inf"}, "style_weight: inf is out of range"),
        ({"name": "../evil"}, "name: '../evil' is not a usable run name"),
        ({"mode": "video"}, "mode: 'video' is not style or texture"),
        ({"viz": True, "viz_url": "file:///etc"}, "Visdom server: 'file:///etc' is not an address like http://localhost:8097"),
    ]
    for change, message in cases:
        status, answer = gui.post_json("/api/train", {**good, **change})
        assert status == 400 and message in answer["error"], (change, answer)
    status, answer = gui.post_json("/api/train", {**good, "name": "tinystyle"})
    assert status == 409 and "name: a run named 'tinystyle' already exists" in answer["error"], answer
    status, kind, body = gui.request("/api/train", b"{not json", {"Content-Type": "application/json"})
    assert (status, json.loads(body)["error"]) == (400, "the form is not valid JSON")
    assert gui.get("/api/train")["state"] in ("idle", "finished", "stopped")  # nothing was started
    assert gui.post_json("/api/train/stop", {}) == (409, {"error": "no training run is going"})


def test_training_run_stops_on_request(gui: Gui) -> None:
    gui.wait_run("idle")
    status, run = gui.post_json("/api/train", {"data_dir": "photos", "style": "style.png", "iterations": 100000,
                                              "name": "long", "save_every": 0})
    assert status == 200 and run["state"] == "running" and run["total"] == 100000, run
    assert "--vgg_weights random" in run["command"] and "--iterations 100000" in run["command"]
    status, answer = gui.post_json("/api/train", {"data_dir": "photos", "style": "style.png", "iterations": 2, "name": "second"})
    assert status == 409 and "already going" in answer["error"]  # one run at a time
    deadline = time.monotonic() + 120
    while gui.get("/api/train")["iteration"] < 1:  # the progress bar is parsed as it arrives
        assert time.monotonic() < deadline
        time.sleep(0.2)
    status, run = gui.post_json("/api/train/stop", {})
    assert status == 200 and run["stopping"]
    run = gui.wait_run("stopped")
    assert run["state"] == "stopped" and run["returncode"] == 130, run
    assert run["model"] == f"long_iter{run['iteration']}" and "stopped by SIGINT" in run["log"][-1]
    assert gui.models()[run["model"]]["iteration"] == run["iteration"]  # the saved checkpoint is offered for stylising


def test_stop_right_after_start_is_stopped(gui: Gui) -> None:
    """Issue 21, case 21: Stop at once after Start, while the child is still starting Python, is a stopped run (it was
    "failed", returncode -2, "lost sys.stderr")."""
    gui.wait_run("idle")
    status, run = gui.post_json("/api/train", {"data_dir": "photos", "style": "style.png", "iterations": 100000,
                                              "name": "stoppedatonce", "save_every": 0})
    assert status == 200 and run["state"] == "running", run
    status, run = gui.post_json("/api/train/stop", {})
    assert status == 200 and run["stopping"], run
    run = gui.wait_run("stopped")
    assert (run["state"], run["returncode"], run["error"]) == ("stopped", 130, None), run
    assert not [line for line in run["log"] if "Traceback" in line or "lost sys.stderr" in line], run["log"]


def test_failed_run_shows_the_trainers_error(gui: Gui) -> None:
    gui.wait_run("idle")
    dead = free_port()  # nothing listens there
    status, run = gui.post_json("/api/train", {"data_dir": "photos", "style": "style.png", "iterations": 2, "name": "noviz",
                                              "viz": True, "viz_url": f"http://127.0.0.1:{dead}"})
    assert status == 200 and run["viz_url"] == f"http://127.0.0.1:{dead}/env/noviz", run
    run = gui.wait_run("failed")
    assert run["state"] == "failed" and run["returncode"] == 2, run
    assert run["error"].startswith(f"texturenet-train: error: --viz: no Visdom server answers at http://127.0.0.1:{dead}")
    assert run["model"] is None and "noviz" not in gui.models()


def test_training_run_completes_is_listed_and_links_to_visdom(gui: Gui, tmp_path: Path) -> None:
    pytest.importorskip("visdom", reason="visdom is not installed: PIP_CONSTRAINT=constraints.txt pip install visdom")
    from _visdom_server import visdom_server, window

    gui.wait_run("idle")
    port = free_port()
    with visdom_server(port, tmp_path / "envs"):
        status, run = gui.post_json("/api/train", {"data_dir": "photos", "style": "style.png", "iterations": "3", "name": "fromgui",
                                                  "save_every": "", "batch_size": "2", "viz": True,
                                                  "viz_url": f"http://127.0.0.1:{port}"})
        assert status == 200, run
        run = gui.wait_run("finished")
        losses = window(port, "fromgui", "losses")  # the environment behind the link holds the run's plots
        with urllib.request.urlopen(run["viz_url"], timeout=30) as page:
            assert page.status == 200
    assert run["state"] == "finished" and run["returncode"] == 0, run
    assert (run["iteration"], run["total"], run["model"], run["error"]) == (3, 3, "fromgui", None)
    assert run["viz_url"] == f"http://127.0.0.1:{port}/env/fromgui"
    assert losses["title"] == "weighted losses" and losses["content"]["data"], losses
    assert gui.models()["fromgui"] == {"name": "fromgui", "mode": "style", "generator": "pyramid", "iteration": 3, "final": True,
                                     "max_strength": 2.0, "residual": False, "fade": False}
    status, kind, body = gui.request(run["pictures"]["samples"])
    assert (status, kind) == (200, "image/png")
    assert Image.open(io.BytesIO(body)).size == Image.open(gui.checkpoints / "fromgui_samples.png").size


# -- the page in headless Chromium --------------------------------------------------------------


def browser(profile: Path) -> Any:
    """Selenium's Chrome driver on the Debian chromium and chromedriver (skipped, or failed in CI, without them)."""
    binary, driver_path = need_browser("the GUI", chromedriver=True)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)  # no Selenium Manager download


def model_options(driver: Any) -> dict[str, str]:
    """The model list as the page shows it: name -> label (read in one go: the page may rebuild it meanwhile)."""
    return driver.execute_script("return Object.fromEntries([...document.querySelectorAll('#model option')].map(o => [o.value, o.text]))")


def test_page_in_headless_chromium(gui: Gui, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    demo_model = os.environ.get("TEXTURENET_GUI_MODEL")  # docs/gui.png: a real trained model instead of the random one
    model = "tinystyle"
    if demo_model:
        model = Path(demo_model).stem
        shutil.copy(demo_model, gui.checkpoints / f"{model}.pth")
    photo = small_photo(320 if demo_model else 96)
    photo_path = tmp_path / "chelsea.jpg"
    photo.save(photo_path, quality=95)
    driver = browser(tmp_path / "profile")
    try:
        wait = WebDriverWait(driver, 60)
        driver.get(gui.printed)  # the address the server printed: it keeps the token in a cookie, and shows the page
        wait.until(lambda d: model in model_options(d))
        assert driver.current_url == gui.url + "/"  # the token is gone from the address bar
        options = model_options(driver)
        assert "texture model" in options["tinytexture"] and "style model" in options["tinystyle"]
        Select(driver.find_element(By.ID, "model")).select_by_value(model)
        driver.find_element(By.ID, "photo").send_keys(str(photo_path))
        slider = driver.find_element(By.ID, "noise")
        assert driver.find_element(By.ID, "noise-value").text == "1.00"
        assert driver.find_element(By.ID, "noise-name").text == "Style strength (noise factor)" and slider.get_attribute("max") == "2"
        slider.send_keys(Keys.ARROW_LEFT * 6)  # 6 steps of 0.05, as a user's keyboard or drag moves it
        assert driver.find_element(By.ID, "noise-value").text == "0.70"
        driver.find_element(By.ID, "go").click()
        wait.until(lambda d: d.find_element(By.ID, "download").is_displayed()
                   and d.execute_script("return document.getElementById('result').naturalWidth") > 0)
        assert not driver.find_element(By.ID, "stylise-error").is_displayed()
        assert "strength 0.70" in driver.find_element(By.ID, "result-caption").text  # a model with the strength dial
        link = driver.find_element(By.ID, "download")
        assert link.get_attribute("download") == f"chelsea_{model}.png"
        encoded = driver.execute_async_script(  # the bytes behind the download link, as the user would save them
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0]).then(r => r.arrayBuffer()).then(b => {"
            "  let s = ''; new Uint8Array(b).forEach(c => { s += String.fromCharCode(c); }); done(btoa(s)); });",
            link.get_attribute("href"))
        result = Image.open(io.BytesIO(base64.b64decode(encoded)))
        assert result.format == "PNG" and result.size == photo.size
        assert np.abs(np.asarray(result.convert("RGB"), dtype=float) - np.asarray(Image.open(photo_path), dtype=float)).mean() > 5

        # a training run from the form: progress, sample grid, then the new model in the list
        driver.find_element(By.ID, "data_dir").send_keys("photos")
        driver.find_element(By.ID, "style").send_keys("style.png")
        driver.find_element(By.ID, "name").send_keys("browserrun")
        iterations = driver.find_element(By.ID, "iterations")
        iterations.clear()
        iterations.send_keys("3")
        gui.wait_run("idle")
        driver.find_element(By.ID, "start").click()
        wait.until(lambda d: d.execute_script(  # this run's panel (the page first shows the previous run)
            "return document.getElementById('run-name').textContent + ' ' + document.getElementById('run-state').textContent")
            == "browserrun finished")
        assert driver.find_element(By.ID, "run-progress").get_attribute("value") == "3"
        wait.until(lambda d: d.execute_script("return document.getElementById('samples').naturalWidth") > 0)
        wait.until(lambda d: "browserrun" in model_options(d))
        if os.environ.get("TEXTURENET_GUI_SCREENSHOT"):
            driver.execute_script("window.scrollTo(0, 0)")
            driver.save_screenshot(os.environ["TEXTURENET_GUI_SCREENSHOT"])

        # a bad field: the server's message, shown in the page
        driver.find_element(By.ID, "start").click()  # same name again
        wait.until(lambda d: d.find_element(By.ID, "train-error").is_displayed())
        assert "a run named 'browserrun' already exists" in driver.find_element(By.ID, "train-error").text
    finally:
        driver.quit()


def test_command_line_errors_and_the_non_loopback_warning(tmp_path: Path) -> None:
    result = run_script("gui.py", "--data_root", tmp_path / "nothere", timeout=120)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"texturenet-gui: error: --data_root {tmp_path / 'nothere'}: no such folder; give the folder that holds your photos and style images"]
    result = run_script("gui.py", "--data_root", tmp_path, "--train_args=--iterations 0 --bogus 1", timeout=120)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "texturenet-gui: error: --train_args: unrecognized arguments: --bogus 1"], result.stderr
    result = run_script("gui.py", "--data_root", tmp_path, "--token", "short", timeout=120)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "texturenet-gui: error: --token must be 16 to 4096 characters, each one of A-Z a-z 0-9 - _ . ~ (the one given has 5 "
        "characters); leave it out for a new random token each start"], result.stderr
    assert "--token TOKEN " in gui_parser().format_help() and "(default: a new random token each start)" in " ".join(
        gui_parser().format_help().split())
    process = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "gui.py"), "--host", "0.0.0.0", "--port", str(free_port()),
                                "--data_root", str(tmp_path), "--checkpoint_dir", str(tmp_path / "ck")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        warning = process.stderr.readline()  # type: ignore[union-attr]
    finally:
        process.terminate()
        process.communicate(timeout=60)
    assert warning.startswith("texturenet-gui: warning: --host 0.0.0.0 is not loopback"), warning
