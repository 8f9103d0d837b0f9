"""Run the emulator in a background thread (tests, benchmarks, the demo)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import uvicorn

from graph_emulator.app import Emulator
from graph_emulator.asgi import DroppedConnection
from graph_emulator.faults import FaultConfig
from graph_emulator.lies import LieConfig
from graph_emulator.throttle import ThrottleConfig

Json = dict[str, Any]


class _HideDrops(logging.Filter):
    """Injected dropped connections are not errors of the emulator: keep them out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


logging.getLogger("uvicorn.error").addFilter(_HideDrops())


class EmulatorServer:
    """A uvicorn server on 127.0.0.1 (free port unless given) running one :class:`Emulator`.

    ``srv.url`` is ``http://127.0.0.1:PORT``; ``srv.base_url`` is ``srv.url + "/v1.0"``.
    """

    def __init__(
        self,
        tenant: Json,
        *,
        token: str = "dev",  # noqa: S107 - the emulator's documented local dev token
        page_size: int = 25,
        throttle: ThrottleConfig | None = None,
        faults: FaultConfig | None = None,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] | None = None,
        lies: LieConfig | str | dict[str, Any] | None = None,
        **settings: Any,
    ) -> None:
        """``settings``: the other keyword arguments of :class:`Emulator` (``token_lifetime``,
        ``sleep``, and the behaviour knobs of :class:`graph_emulator.behaviour.Knobs`)."""
        kw: dict[str, Any] = {"clock": clock} if clock else {}
        self.app = Emulator(
            tenant,
            token=token,
            page_size=page_size,
            throttle=throttle if throttle is not None else ThrottleConfig.graph(),
            faults=faults,
            seed=seed,
            lies=lies,
            **kw,
            **settings,
        )
        self.token = token
        self.host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> EmulatorServer:
        if self._thread is not None:
            return self
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say so; without it every
        # answer (headers, then body) waits ~40 ms for a delayed ACK (Nagle).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        self._port = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            ws="none",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"emulator:{self._port}"
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._server.started:
                try:
                    httpx.get(self.url + "/_emulator/stats", timeout=2).raise_for_status()
                    return self
                except httpx.HTTPError:
                    pass
            if not self._thread.is_alive():
                break
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"the emulator did not start on {self.host}:{self._port}")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- handles ----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1.0"

    def state(self) -> Json:
        return self.app.state()

    def stats(self) -> Json:
        return self.app.stats_snapshot()

    def reset(self, tenant: Json | None = None) -> None:
        self.app.reset(tenant)

    def reset_stats(self) -> None:
        self.app.reset_stats()

    def configure(self, **settings: Any) -> None:
        """Change knobs at runtime (the keywords of :meth:`Emulator.configure`)."""
        self.app.configure(**settings)

    def __repr__(self) -> str:
        return f"EmulatorServer({self.url!r})"

    def dump_state(self) -> str:
        return json.dumps(self.state(), indent=1)
