"""Which broker to use, and a Mosquitto of our own as a child process.

``mqtt://[user[:password]@]host[:port]`` (1883 by default) or ``mqtts://...`` (TLS, 8883) names an
existing broker. :class:`MosquittoBroker` starts Debian's ``mosquitto`` on a free loopback port
with a configuration written for it (no persistence, unlimited queues so that a slow subscriber
delays messages rather than losing them at QoS 1), waits until it accepts connections, and stops
it on :meth:`~MosquittoBroker.stop` (or when the ``with`` block ends).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

START_TIMEOUT_S = 10.0


class BrokerError(RuntimeError):
    """The broker URL is malformed, or the broker cannot be started or reached."""


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    """CA certificates to trust (TLS); None: the system's."""

    def __str__(self) -> str:
        """The URL without the password (what ``serve`` prints)."""
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}{host}:{self.port}"


def parse_broker_url(text: str, *, ca_file: Path | None = None) -> BrokerUrl:
    """``mqtt://user:password@host:port`` or ``mqtts://...``; BrokerError says what is wrong."""
    parts = urlsplit(text)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise BrokerError(f"--mqtt '{text}': expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    try:
        port = parts.port
    except ValueError:
        raise BrokerError(f"--mqtt '{text}': the port is not a number 1-65535") from None
    if not parts.hostname:
        raise BrokerError(f"--mqtt '{text}': no host")
    tls = parts.scheme == "mqtts"
    return BrokerUrl(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
        ca_file=ca_file,
    )


def mosquitto_executable() -> str:
    """Debian installs the broker in /usr/sbin, which is not on every user's PATH."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise BrokerError(
            "mosquitto not found: install the Debian package (make setup does: "
            "apt-get install mosquitto mosquitto-clients)"
        )
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _config(host: str, port: int) -> str:
    return "\n".join(
        [
            "# Written by ccsim for its own child broker; removed when it stops.",
            f"listener {port} {host}",
            "allow_anonymous true",
            "persistence false",
            # 0: no limit. At QoS 1 a subscriber that falls behind gets its messages late, not never.
            "max_queued_messages 0",
            "max_queued_bytes 0",
            "max_inflight_messages 0",
            "set_tcp_nodelay true",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "",
        ]
    )


class MosquittoBroker:
    """A Mosquitto child process on a free loopback port; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1", executable: str | None = None) -> None:
        self.host = host
        self.executable = executable
        self.url: BrokerUrl | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> BrokerUrl:
        executable = self.executable or mosquitto_executable()
        self._dir = tempfile.TemporaryDirectory(prefix="ccsim-mosquitto-")
        last_error = ""
        for _attempt in range(3):  # the free port may be taken between our probe and its bind
            port = free_port(self.host)
            config = Path(self._dir.name) / "mosquitto.conf"
            config.write_text(_config(self.host, port))
            log = open(Path(self._dir.name) / "mosquitto.log", "wb")  # noqa: SIM115 - the child's
            with log:
                self._process = subprocess.Popen(
                    [executable, "-c", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C in the terminal is for ccsim, which stops it
                )
            if self._wait_ready(port):
                self.url = BrokerUrl(self.host, port)
                return self.url
            last_error = (Path(self._dir.name) / "mosquitto.log").read_text(errors="replace").strip()
            self._kill()
        self._cleanup()
        raise BrokerError(f"mosquitto did not start on {self.host}: {last_error or 'no output'}")

    def _wait_ready(self, port: int) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            with contextlib.suppress(OSError), socket.create_connection((self.host, port), 0.2):
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        self._kill()
        self._cleanup()

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def _cleanup(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> BrokerUrl:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def reachable(url: BrokerUrl, timeout_s: float = 3.0) -> bool:
    """Whether something listens at the broker's address (before a client tries MQTT on it)."""
    try:
        with socket.create_connection((url.host, url.port), timeout_s):
            return True
    except OSError:
        return False


__all__ = ["BrokerError", "BrokerUrl", "MosquittoBroker", "parse_broker_url", "reachable"]
