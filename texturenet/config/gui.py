"""One ``texturenet-gui`` server's settings (:class:`GuiConfig`) and what a usable token is."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

GUI_TOKEN = re.compile(r"[A-Za-z0-9._~-]{16,4096}")
"""A usable GUI token: too long to guess, and safe as it is in an address, a cookie and a header."""


@dataclass
class GuiConfig:
    """Settings of one ``texturenet-gui`` server (the command line builds its flags from these fields)."""

    host: str = "127.0.0.1"
    """Address to listen on; loopback, so only this machine can reach the page."""
    port: int = 8098
    """Port of the page (Visdom's default is 8097, so both run side by side)."""
    checkpoint_dir: Path = Path("checkpoints")
    """Folder whose checkpoints are listed, and where training runs started from the page write theirs."""
    data_root: Path = Path(".")
    """Training data folders and style images can only be chosen under this folder."""
    max_upload_mb: float = 20.0
    """Uploads larger than this many MiB are refused before they are read."""
    max_megapixels: float = 50.0
    """Uploaded images with more pixels than this are refused before they are decoded."""
    max_side: int = 1024
    """Uploaded photos are shrunk so that their longer side is at most this many pixels (bounds the time a request takes)."""
    train_args: str = ""
    """Extra texturenet-train flags for every run started from the page, e.g. --train_args='--loss_net vgg16 --vgg_weights W.pth --cuda'; the form's fields come after them and win."""
    cuda: bool = False
    """Stylise on the GPU (training runs use the GPU when --train_args has --cuda)."""
    token: Optional[str] = None
    """The secret every request must carry, as Jupyter's: the printed address holds it (opening it keeps it in a cookie), scripts send the header 'Authorization: token TOKEN'; at least 16 of the characters A-Z a-z 0-9 - _ . ~"""
    request_timeout: float = 20.0
    """Seconds in total, however slowly it trickles, that a request's headers may take to arrive (or an idle connection may stay open), and then its body: then the connection is closed (a late body: 408); also the longest an upload waits for room to be decoded."""
    threads: int = 8
    """Threads for the work that blocks (stylising, decoding uploads, reading checkpoints, listing folders); more requests wait their turn. Connections hold no thread, so slow or silent clients cannot use them up."""
    decode_megapixels: float = 100.0
    """Megapixels of uploads decoded at once, over all requests (decoding memory grows with the pixels); an upload that finds no room within request_timeout is answered 503, busy."""
    allowed_hosts: str = ""
    """Other names the page is opened by, comma-separated, e.g. mybox.lan; the Host of every request must be one of them, a loopback name, --host, this machine's name or an IP address (DNS rebinding cannot use those)."""

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1..65535, got {self.port}")
        if not (self.max_upload_mb > 0 and self.max_megapixels > 0 and self.max_side >= 16):
            raise ValueError("max_upload_mb and max_megapixels must be > 0 and max_side at least 16")
        if not (0 < self.request_timeout < math.inf and self.threads >= 1):
            raise ValueError("request_timeout must be > 0 and threads at least 1")
        if self.token is not None and not GUI_TOKEN.fullmatch(self.token):
            others = ", not all of them those" if re.search(r"[^A-Za-z0-9._~-]", self.token) else ""
            raise ValueError(f"--token must be 16 to 4096 characters, each one of A-Z a-z 0-9 - _ . ~ (the one given has "
                             f"{len(self.token)} characters{others}); leave it out for a new random token each start")
        if self.decode_megapixels < self.max_megapixels:
            raise ValueError(f"decode_megapixels ({self.decode_megapixels:g}) must be at least max_megapixels "
                             f"({self.max_megapixels:g}), or an image at the limit could never be decoded")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)
