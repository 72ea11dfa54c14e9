"""``ccsim serve`` (and ``ccsim replay``): validate everything, open the store, make sure an admin
exists, bind the socket, say where the control room is, and serve until interrupted."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable

import uvicorn

from adapters.mqtt.broker import MosquittoBroker
from controlcenter.app import create_app
from controlcenter.auth import ADMIN, ADMIN_TOKEN_ENV, Role, check_token_text, new_token, token_hash
from controlcenter.config import ServeConfig
from controlcenter.lorawan import load_registry, open_broker
from controlcenter.replay import RecordedRun
from controlcenter.runtime import ControlCenter, network_map_of
from controlcenter.store import Store
from sim.controllers import create_controller
from sim.errors import CcsimError
from sim.scenario import load_scenario
from sim.study import check_window


def bootstrap_admin(store: Store, env_token: str | None) -> str | None:
    """Make sure an account can manage the others; returns its token if one was made here.

    Without ``CCSIM_ADMIN_TOKEN``, a first start (empty store) creates the ``admin`` account with
    a random token, returned to be shown once. With it, ``admin`` is an admin account whose one
    token is that one, at every start: a changed variable retires the previous token (and any
    other token of ``admin``). A store from before the admin role has its ``admin`` promoted.
    """
    if env_token is not None:
        check_token_text(env_token, ADMIN_TOKEN_ENV)
    token = env_token or (new_token() if store.user_count() == 0 else None)
    writer = store.writer()
    try:
        with writer.transaction():
            role = writer.user_role(ADMIN)
            if role is None and token is not None:
                writer.add_user(ADMIN, Role.ADMIN.label)
            elif role is not None and (
                env_token is not None or writer.count_role(Role.ADMIN.label) == 0
            ):
                writer.set_role(ADMIN, Role.ADMIN.label)
            if token is not None:
                hashed = token_hash(token)
                owner = writer.token_owner(hashed)
                if owner not in (None, ADMIN):
                    raise CcsimError(f"{ADMIN_TOKEN_ENV}: that token is the token of user '{owner}'")
                writer.revoke_tokens(ADMIN, keep=hashed)
                writer.add_token(hashed, ADMIN)
    finally:
        writer.close()
    return None if env_token else token


SEND_BUFFER_BYTES = 64 * 1024
"""Kernel send buffer of each connection (Linux doubles it). Fixed rather than auto-tuned (which
grows to megabytes on loopback), so that a feed client that stops reading fills it within
seconds, its sends stop progressing and the send timeout drops it; 128 KiB still carries a
feed of a few hundred KB/s over a 200 ms round trip."""


def bind(host: str, port: int) -> socket.socket:
    """Listen on ``host:port`` (port 0: any free port); accepted sockets inherit the options."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CcsimError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from None
    sock.listen(2048)
    return sock


def url_of(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def log_line(text: str) -> None:
    """A line of the server's log (stdout, at once: scripts wait for the control room's)."""
    print(text, flush=True)


def serve(config: ServeConfig, say: Callable[[str], None] = log_line) -> int:
    # Whatever can fail on bad input fails before an admin token is made: it is shown only once.
    scenario = load_scenario(config.scenario, config.variant)
    check_window(scenario, config.begin_s, config.end_s)
    controller = create_controller(config.controller)
    drives = (
        config.ntcip_controllers
        or scenario.ntcip_controllers
        or any(b.drive for b in scenario.ntcip_stations)
    )
    if drives and not controller.uses_detectors:
        raise CcsimError(
            f"--controller {config.controller}: SUMO runs the signals' own programs, so neither an "
            "external controller in the loop nor a station with drive = true can drive them; "
            "use a ccsim controller (adaptive, actuated, maxpressure, webster)"
        )
    in_the_loop = config.ntcip_controllers or scenario.ntcip_controllers
    if in_the_loop and config.speed != 1.0:
        speed = "max" if config.speed is None else f"{config.speed:g}"
        raise CcsimError(
            f"--speed {speed}: an external controller in the loop times its phases on the wall "
            "clock, so the simulation must keep it too: run at --speed 1"
        )
    uplinks = scenario.parking is not None and scenario.parking.bay_sensor_source == "uplinks"
    if uplinks and config.mqtt is None:
        raise CcsimError(
            f"{config.scenario}: parking.bay_sensor_source = 'uplinks' needs the sensors' "
            "network: add --mqtt"
        )
    if config.mqtt is not None:
        load_registry(config.mqtt)  # a bad registry file fails before anything starts
    sock = bind(config.host, config.port)
    ntcip = None
    bound = scenario.ntcip_stations or scenario.ntcip_controllers
    if config.ntcip is not None or config.ntcip_stations or config.ntcip_controllers or bound:
        from controlcenter.ntcip import NtcipService

        try:
            network = network_map_of(scenario, config.controller)
            ntcip = NtcipService(
                config.ntcip, scenario, network, stations=config.ntcip_stations,
                controllers=config.ntcip_controllers,
            )  # fmt: skip
        except CcsimError:
            sock.close()
            raise
    broker: MosquittoBroker | None = None
    mqtt_url = None
    if config.mqtt is not None:  # an unreachable broker fails before the token is made, too
        mqtt_url, broker = open_broker(config.mqtt)
    try:
        store = Store(config.db_url)
        token = bootstrap_admin(store, os.environ.get(ADMIN_TOKEN_ENV))
        if token is not None:
            say(f"admin token: {token}")
        if mqtt_url is not None:
            say(f"mqtt: {mqtt_url}")
        center = ControlCenter(config, store, ntcip=ntcip, mqtt_url=mqtt_url)
        url = url_of(config.host, sock.getsockname()[1])
        center.sensorthings.base_url = f"{url}v1.1"
        say(f"sensorthings: {url}v1.1 (locations: {center.sensorthings.projection.source})")
        if not center.ngsild.georef.placed:
            say("ngsi-ld: the net has no geo-projection, and neither --geo-origin nor the "
                "scenario's [geo] origin places it: the entities carry no location")  # fmt: skip
        if center.ngsild_push is not None:
            say(f"ngsi-ld: pushing to {center.ngsild_push.url} every {config.ngsi_ld_period_s:g} s")
        for line in ntcip.mapping() if ntcip else []:
            say(line)
        # last: scripts and tests read everything above once they see the control room's address
        say(f"control room: {url}")
        _run(center, sock)
    finally:
        if broker is not None:
            broker.stop()
    return 0


def replay(run: RecordedRun, config: ServeConfig, say: Callable[[str], None] = log_line) -> int:
    """``ccsim replay``: serve the control room of the finished ``run`` (``config`` from
    :func:`~controlcenter.replay.replay_config`)."""
    sock = bind(config.host, config.port)
    try:
        store = Store(config.db_url)
        token = bootstrap_admin(store, os.environ.get(ADMIN_TOKEN_ENV))
        if token is not None:
            say(f"admin token: {token}")
        center = ControlCenter(config, store, replay=run)
    except BaseException:
        sock.close()
        raise
    url = url_of(config.host, sock.getsockname()[1])
    variant = f", variant {config.variant}" if config.variant else ""
    say(f"replay: {run.run_dir} ({config.scenario}{variant}, {config.controller}, seed {config.seed}; "
        f"t {run.begin_t:g} to {run.end_t:g} s, {len(run.rows)} messages)")  # fmt: skip
    say(f"control room: {url}")  # last, as for serve
    _run(center, sock)
    return 0


def _run(center: ControlCenter, sock: socket.socket) -> None:
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(center),
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
            # Each feed frame is serialised once for all clients; per-message deflate would
            # compress it again for every connection (its window is per connection).
            ws_per_message_deflate=False,
        )
    )
    center.collector.start()  # what start-up built is frozen; full collections after ticks
    try:
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C once it has shut down
            server.run(sockets=[sock])
    finally:
        center.collector.stop()
