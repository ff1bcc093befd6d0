"""The console as an aiohttp application: its routes, and running it (alone with `driftwise
console`, or inside `driftwise serve` and `driftwise demo --keep`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from driftwise.console import handlers
from driftwise.console.gateway import Gateway, Target, TokenInClearText
from driftwise.console.guard import allowed_hosts, is_loopback_host
from driftwise.console.live import live, stop_all
from driftwise.console.pages import ASSETS, PAGES, asset, favicon, guard, load_assets, page
from driftwise.console.sessions import Sessions
from driftwise.console.state import CONSOLE, Console, ConsoleConfig
from driftwise.errors import StartupError
from driftwise.settings import Settings
from driftwise.settings.console import ConsoleSettings
from driftwise_client.options import TlsConfig

log = logging.getLogger(__name__)

__all__ = [
    "RunningConsole",
    "build_app",
    "console_config",
    "hosted_console",
    "running_console",
    "serve_console",
]


def console_config(settings: ConsoleSettings, target: str) -> ConsoleConfig:
    """The console's configuration: the settings with their files read (StartupError naming the
    file that cannot be used) and the token rule checked."""
    try:
        tls = None
        if settings.tls_ca_file is not None:
            tls = TlsConfig.from_files(
                settings.tls_ca_file,
                settings.tls_cert_file,
                settings.tls_key_file,
                settings.tls_server_name or None,
            )
        token = None
        if settings.token_file is not None:
            token = settings.token_file.read_text().strip()
            if not token:
                raise StartupError(f"console.token_file {settings.token_file} is empty")
    except OSError as exc:
        raise StartupError(f"console: {exc.filename}: {exc.strerror}") from exc
    config = ConsoleConfig(
        target=Target(target, tls),
        host=settings.host,
        port=8080 if settings.port is None else settings.port,
        default_token=token,
        allowed_hosts=allowed_hosts(settings.host, settings.allowed_hosts),
        eval_report=settings.eval_report,
        session_idle_seconds=settings.session_idle_seconds,
    )
    if token is not None:
        try:
            config.target.check_token()
        except TokenInClearText as exc:
            raise StartupError(f"console.token_file: {exc}") from None
    return config


def hosted_console(settings: Settings, server_port: int | None = None) -> ConsoleConfig:
    """The console that `driftwise serve` (or the demo) hosts beside its gRPC server: it reads
    console.target, else that very server (on loopback when it binds every address). Call it
    before the server starts to check the console's files; again with the port the server got."""
    console = settings.console
    if not console.target and settings.tls.cert_file is not None and console.tls_ca_file is None:
        raise StartupError(
            "console: the server serves TLS (tls.cert_file): set console.tls_ca_file to the CA that "
            "signs it (and console.tls_cert_file / tls_key_file if it requires client certificates)"
        )
    host = settings.server.host
    host = "127.0.0.1" if host in ("0.0.0.0", "", "::", "[::]") else host
    port = settings.server.port if server_port is None else server_port
    return console_config(console, console.target or f"{host}:{port}")


def build_app(config: ConsoleConfig, gateway: Gateway) -> web.Application:
    app = web.Application(middlewares=[guard], client_max_size=64 * 1024)
    console = Console(config, gateway, Sessions(config.session_idle_seconds))
    app[CONSOLE] = console
    app[ASSETS] = load_assets()
    for path in PAGES:
        app.router.add_get(path, page)
    app.router.add_get("/static/{path:.+}", asset)
    app.router.add_get("/favicon.ico", favicon)
    api = {
        "session": handlers.session_info,
        "stats": handlers.stats,
        "model": handlers.model,
        "quality": handlers.quality,
        "users": handlers.users,
        "profile": handlers.profile,
        "history": handlers.history,
        "recommendations": handlers.recommendations,
        "live": live,
        "items": handlers.items,
        "search": handlers.search,
        "item": handlers.item,
        "evaluation": handlers.evaluation,
        "evaluation/plot.png": handlers.evaluation_plot,
    }
    for name, handler in api.items():
        app.router.add_get(f"/api/{name}", handler)
    app.router.add_post("/api/feedback", handlers.feedback)
    app.router.add_post("/api/login", handlers.login)
    app.router.add_post("/api/logout", handlers.logout)

    async def on_shutdown(_: web.Application) -> None:
        stop_all(console.live)

    app.on_shutdown.append(on_shutdown)
    return app


@dataclass(frozen=True)
class RunningConsole:
    host: str
    port: int

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/"


@contextlib.asynccontextmanager
async def running_console(config: ConsoleConfig) -> AsyncIterator[RunningConsole]:
    """The console listening on config.host:config.port (0: a free port) until the block exits."""
    gateway = Gateway(config.target)
    # live streams end at shutdown (on_shutdown): 2 s is plenty for the calls in flight
    runner = web.AppRunner(build_app(config, gateway), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port)
        try:
            await site.start()
        except OSError as exc:
            raise StartupError(
                f"console: cannot listen on {config.host}:{config.port}: {exc.strerror}"
            ) from exc
        port = config.port or _bound_port(runner)
        running = RunningConsole(config.host, port)
        log.info("console on %s, reading %s", running.url, config.target.address)
        if not is_loopback_host(config.host):
            log.warning(
                "the console listens on %s, not loopback: whoever reaches port %d can use it%s; "
                "restrict it with a network policy, console.allowed_hosts or an authenticating proxy",
                config.host,
                port,
                " with the token of console.token_file" if config.default_token else "",
            )
        yield running
    finally:
        await runner.cleanup()
        await gateway.close()


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise StartupError("console: no listening socket")


async def serve_console(config: ConsoleConfig) -> None:
    """`driftwise console`: run until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with running_console(config) as running:
        print(
            f"driftwise console on {running.url} reading {config.target.address} (Ctrl-C to stop)", flush=True
        )
        await stop.wait()
