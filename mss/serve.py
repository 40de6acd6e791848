"""``mss serve``: every listener and the job workers.

Each part can be switched off in ``[listeners]``. A port in use or an
unreachable database stops the start with one sentence. With
``[listeners] job_process = true`` the job workers run in a second process
(``JobProcess``), which the hub starts, wakes when it commits new jobs,
restarts if it dies and stops with itself: a second core for the follow-up
work while the first one serves SMTP, IMAP and HTTPS. With
``[listeners] smtp_processes = N`` (N > 1, or "auto": one per core), N - 1 more processes
(``SmtpProcess``) serve the same SMTP ports, supervised the same way; ``https_processes``
likewise for the HTTPS port (``HttpsProcess``: portal and APIs, on PostgreSQL by default).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import copy
import ctypes
import gc
import logging
import multiprocessing
import os
import secrets
import signal
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from mss import metrics
from mss.config import Settings
from mss.crypto import handshake_failures, passwords
from mss.db import Database
from mss.jobs import JobRunner, release_leases, runner_identity, schedule_daily
from mss.ports import PORT_NAMES, port_error
from mss.services import Services

if TYPE_CHECKING:
    from aiohttp import web

    from mss.followups import FollowUps

log = logging.getLogger("mss.serve")


@dataclass
class Hub:
    """A running hub: its database, services, servers and workers."""

    settings: Settings
    db: Database
    services: Services | None = None  # built by start()
    servers: list[asyncio.AbstractServer] = field(default_factory=list)
    http_runner: web.AppRunner | None = None
    runner: JobRunner | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    bound: dict[str, int] = field(default_factory=dict)
    job_process: JobProcess | None = None
    smtp_processes: list[SmtpProcess] = field(default_factory=list)
    imap_processes: list[ImapProcess] = field(default_factory=list)
    https_processes: list[HttpsProcess] = field(default_factory=list)

    async def start(self) -> None:
        from mss.crypto.trust import TrustStore

        settings = self.settings
        metrics.use_multiprocess(
            metrics.metrics_directory(settings.data_path), clean=True
        )  # before the children
        metrics.hub_metrics().db_pool_capacity.inc(self.db.pool_capacity)
        passwords.configure(settings.auth.cache_seconds)
        trust = TrustStore.from_settings(settings)
        # a hub that only serves IMAP delivers nothing and runs no job (as its IMAP children):
        # the follow-ups' and jobs' parts (SMTP gateway, DMP filing, portal...) stay unimported
        delivering = (
            _smtp_listening(settings) or settings.listeners.https or settings.listeners.workers
        )
        if delivering:
            register_follow_ups()
        smtp_processes = settings.smtp_process_count if _smtp_listening(settings) else 1
        limiter = None
        if smtp_processes > 1:
            from mss.smtp_gateway import SharedConnectionLimiter

            limiter = SharedConnectionLimiter(
                settings.limits.max_connections_per_ip, smtp_processes
            )
        services = self.services = Services(settings, trust=trust, connection_limiter=limiter)
        if delivering:  # idle here when the workers run elsewhere
            self.runner = job_runner(self.db, services)
        if settings.listeners.workers and settings.listeners.job_process:
            self.job_process = JobProcess(settings, self.db)
            self.job_process.start()
            services.jobs.use(self.job_process)  # what delivery wakes
        try:
            await self._start_listeners()
        except BaseException:
            await self.stop()
            raise
        handshake_failures.install(asyncio.get_running_loop(), listener_names(self.bound, services))
        if smtp_processes > 1:
            self.smtp_processes = start_smtp_processes(settings, services, smtp_processes - 1)
            self.tasks += [
                asyncio.create_task(child.supervise(), name=child.name)
                for child in self.smtp_processes
            ]
        self.imap_processes = start_imap_processes(settings, self.db, self.bound)
        self.tasks += [asyncio.create_task(c.supervise(), name=c.name) for c in self.imap_processes]
        if "https" in self.bound:
            self.https_processes = start_https_processes(
                settings, services, self.bound["https"], https_count(settings, self.db) - 1
            )
            self.tasks += [
                asyncio.create_task(c.supervise(), name=c.name) for c in self.https_processes
            ]
        if settings.listeners.workers:
            await _schedule_retention(self.db)
        if self.job_process is not None:
            self.tasks.append(asyncio.create_task(self.job_process.supervise(), name="job process"))
        elif settings.listeners.workers and self.runner is not None:
            self.tasks.append(asyncio.create_task(self.runner.run_forever(), name="jobs"))
        self.tasks.append(asyncio.create_task(keep_trust_fresh(settings, trust), name="trust"))

    async def _start_listeners(self) -> None:
        from mss.crypto.tls import rotating_server_context

        settings, listeners = self.settings, self.settings.listeners
        services = self.services
        assert services is not None  # start() built them
        # each listener's RotatingServerContext (new ticket keys every [tls] ticket_key_hours)
        contexts = services.tls_contexts
        if _smtp_listening(settings):
            from mss.smtp_gateway import start_smtp_servers

            self.servers += await start_smtp_servers(
                settings, self.db, services, reuse_port=settings.smtp_process_count > 1
            )
        if listeners.imap or listeners.imaps:
            from mss.mailbox.imap import start_imap_servers

            imap_tls = rotating_server_context(settings)
            imap_servers = await start_imap_servers(
                settings, self.db, imap_tls, reuse_port=imap_count(settings, self.db) > 1
            )
            self.servers += imap_servers
            names = [name for name in ("imap", "imaps") if getattr(listeners, name)]
            contexts.update(dict.fromkeys(names, imap_tls))
            self.bound.update(
                {
                    name: server.sockets[0].getsockname()[1]
                    for name, server in zip(names, imap_servers, strict=True)
                    if server.sockets
                }
            )
        if listeners.https:
            self.http_runner, self.bound["https"] = await start_https_site(
                settings, self.db, services, reuse_port=https_count(settings, self.db) > 1
            )  # the port bound when the config asks for port 0

    async def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()
        if self.http_runner is not None:
            await self.http_runner.cleanup()
        for child in [*self.smtp_processes, *self.https_processes]:
            child.detach()
        await asyncio.gather(*(asyncio.to_thread(child.stop) for child in self.smtp_processes))
        await asyncio.gather(*(asyncio.to_thread(child.stop) for child in self.https_processes))
        await asyncio.gather(*(asyncio.to_thread(child.stop) for child in self.imap_processes))
        if self.job_process is not None:
            await asyncio.to_thread(self.job_process.stop)
        await self.db.dispose()
        metrics.use_in_process()


async def _schedule_retention(db: Database) -> None:
    """The daily retention pass (``mss.retention``): queued at start unless one is already
    queued."""
    from mss import retention
    from mss.errors import DatabaseUnavailable
    from portal import handover

    try:
        await retention.schedule_daily(db)
        await schedule_daily(db, handover.DAILY_JOB)
    except (
        DatabaseUnavailable
    ) as exc:  # the pass is queued at the next start; the hub serves meanwhile
        log.warning("could not queue the daily retention pass: %s", exc)


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters (malloc.h)
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 256 * 1024
MALLOC_ARENAS = 2


def limit_malloc() -> None:
    """At the start of a serving process: C allocations (OpenSSL, SQLite, argon2) given back.

    glibc's malloc gives each thread that allocates (aiosqlite's one per connection, the
    argon2 hashes in ``asyncio.to_thread``) an arena of its own, up to 8 per core, and keeps
    what was freed in each; and after the first 19 MiB argon2 buffer is freed it raises its
    mmap threshold above it, so every later hash is carved from the heap and stays there.
    Two arenas and a fixed 256 KiB threshold (what ``MALLOC_ARENA_MAX=2`` and
    ``MALLOC_MMAP_THRESHOLD_`` would set) cost nothing measurable in commands/s and cut the
    IMAP bench's peak PSS from 133 to 104 MB (50 users, 20 clients). Elsewhere than glibc:
    nothing.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_ARENA_MAX, MALLOC_ARENAS)
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def freeze_startup_objects() -> None:
    """Once a serving process is up (not in a test's process: what it froze is never freed):
    what it built to start (modules, tables, compiled statements: 133,000 objects in the hub)
    goes out of the collector's sight (``gc.freeze``), so a full collection under load walks
    only what the connections made since (measured at a load average of 10: 173 ms a full
    collection before, nothing after).
    """
    gc.collect()
    gc.freeze()


def listener_names(bound: dict[str, int], services: Services) -> dict[int, str]:
    """Each bound port and what it serves, for the log of failed TLS handshakes."""
    ports = {**services.smtp_ports, **bound}
    return {port: PORT_NAMES.get(key, key) for key, port in ports.items()}


def _smtp_listening(settings: Settings) -> bool:
    listeners = settings.listeners
    return listeners.submission or listeners.submission_tls or listeners.smtp_relay


def register_follow_ups(registry: FollowUps | None = None) -> FollowUps:
    """Every part's follow-ups of a delivery (``mss.followups``), where a hub process starts.

    Delivery enqueues only what is registered: every process that serves SMTP or the
    portal calls this (the hub, its SMTP and job processes, ``python -m mss.smtp_gateway``).
    """
    from dmp_bridge import follow_up as dmp_follow_up
    from mss import agenda, followups, notify, smtp_gateway

    registry = registry if registry is not None else followups.registry
    for part in (dmp_follow_up, agenda, notify, smtp_gateway):
        part.register_follow_ups(registry)
    return registry


def job_runner(db: Database, services: Services, runner_id: str | None = None) -> JobRunner:
    """A runner for every kind of follow-up job the hub runs; ``services.jobs`` wakes it."""
    from dmp_bridge import filing
    from mss import agenda, notify, patients, retention, smtp_gateway
    from portal import handover

    runner = JobRunner(db, services=services, runner_id=runner_id)
    services.jobs.use(runner)
    for part in (smtp_gateway, notify, patients, filing, agenda, retention, handover):
        part.register_jobs(runner)
    return runner


def _resolve(exited: asyncio.Future[None]) -> None:
    """The child's sentinel became readable: it has exited."""
    if not exited.done():
        exited.set_result(None)


class ChildProcess(abc.ABC):
    """A part of the hub in a spawned child process: started, restarted if it dies, stopped with
    SIGTERM."""

    restart_delay = 1.0
    name = "mss-child"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.process: multiprocessing.process.BaseProcess | None = None
        self._stopping = False
        self.restarts = 0

    @abc.abstractmethod
    def _target(self, context: Any) -> tuple[Any, tuple[Any, ...]]:
        """The child's function and arguments for one start (parent side)."""

    def _after_start(self) -> None:  # noqa: B027 (a hook: most children need nothing here)
        """Parent side, once the child runs."""

    async def _after_exit(self) -> None:  # noqa: B027 (a hook)
        """Parent side, once the child has exited on its own (before it is started again)."""

    def start(self) -> None:
        context = multiprocessing.get_context(
            "spawn"
        )  # a fresh interpreter: no loop or sockets inherited
        target, args = self._target(context)
        self.process = context.Process(target=target, args=args, name=self.name, daemon=True)
        self.process.start()
        self._after_start()

    async def supervise(self) -> None:
        """Start the child again (after ``restart_delay``) whenever it exits while the hub runs."""
        loop = asyncio.get_running_loop()
        while not self._stopping and self.process is not None:
            exited: asyncio.Future[None] = loop.create_future()
            sentinel = self.process.sentinel
            loop.add_reader(sentinel, _resolve, exited)
            try:
                await exited
            finally:
                loop.remove_reader(sentinel)
            metrics.forget_process(self.process.pid)  # its open sessions and connections are closed
            if self._stopping:
                return
            log.error(
                "the %s process exited with code %s; starting it again",
                self.name,
                self.process.exitcode,
            )
            try:
                await self._after_exit()
            except Exception:
                log.exception("cleaning up after the %s process failed", self.name)
            await asyncio.sleep(self.restart_delay)
            if not self._stopping:
                self.restarts += 1
                self.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the child to finish what it is doing and exit (SIGTERM); kill it after
        ``timeout``."""
        self._stopping = True
        if self.process is not None and self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
            metrics.forget_process(self.process.pid)
        self._closed()

    def _closed(self) -> None:  # noqa: B027 (a hook)
        """Parent side, once the child is stopped for good."""


class JobProcess(ChildProcess):
    """The job workers in a child process; ``wake()`` is what ``JobRunner.wake`` is in process.

    The child reads the same settings and database. The hub writes one byte on a
    pipe when it commits new jobs, so the child does not wait for its next poll.

    Each start draws a token, and the child's runner leases jobs as ``host:pid:token``
    (``runner_identity``). When the child dies, the hub has seen it exit (its sentinel),
    so it gives that runner's running jobs back at once (``release_leases``) and the
    next child takes them, instead of waiting for their lease. Only that exact identity
    is released: the runners of other hubs on the same PostgreSQL, even on a host of the
    same name and with the same pid, have another token.
    """

    name = "mss-jobs"

    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        super().__init__(settings)
        self.db = db  # where the hub releases a dead child's leases (None: they expire)
        self.runner_id: str | None = None  # the current child's runner
        self._wake: Connection | None = None  # the hub's end of the wake-up pipe

    def _target(self, context: Any) -> tuple[Any, tuple[Any, ...]]:
        reader, writer = context.Pipe(duplex=False)
        self._pipe = (reader, writer)
        self._token = secrets.token_hex(8)
        return _job_process_main, (self.settings, reader, self._token)

    def _after_start(self) -> None:
        reader, writer = self._pipe
        del self._pipe
        reader.close()
        self._closed()
        os.set_blocking(writer.fileno(), False)
        self._wake = writer
        assert self.process is not None
        self.runner_id = runner_identity(self.process.pid, self._token)

    async def _after_exit(self) -> None:
        if self.db is None or self.runner_id is None:
            return
        pid = self.process.pid if self.process is not None else None
        released = await release_leases(
            self.db, self.runner_id, f"the job process (pid {pid}) exited while running it"
        )
        if released:
            log.warning(
                "released %s jobs the %s process (pid %s) was running: the next one runs them now",
                released,
                self.name,
                pid,
            )

    def wake(self) -> None:
        if self._wake is None:
            return
        try:
            os.write(self._wake.fileno(), b"\0")
        except (
            BlockingIOError,
            BrokenPipeError,
        ):  # a wake-up is already pending, or the child is gone
            pass

    def _closed(self) -> None:
        if self._wake is not None:
            self._wake.close()
            self._wake = None


class SmtpProcess(ChildProcess):
    """One more SMTP process on the hub's SMTP ports (``[listeners] smtp_processes``).

    Every SMTP process listens on the same ports (SO_REUSEPORT: the kernel spreads the
    connections) and runs the whole message path on the same database; the per-address
    connection limit is counted across them (``SharedConnectionLimiter``). The child
    writes a byte on its socket pair when it commits new jobs, and the hub wakes the job
    workers (``services.jobs``); when the hub is gone, the child reads the end of
    that socket and stops.
    """

    def __init__(self, settings: Settings, index: int, limiter: Any, services: Services) -> None:
        super().__init__(settings)
        self.index = index
        self.name = f"mss-smtp-{index}"
        self.limiter = limiter
        self.services = services
        self._link: Connection | None = None

    def _target(self, context: Any) -> tuple[Any, tuple[Any, ...]]:
        self._closed()
        self.limiter.reset(self.index)  # whatever an earlier child held is closed with it
        ours, theirs = context.Pipe(duplex=True)
        self._pair = (ours, theirs)
        return _smtp_process_main, (self.settings, self.limiter.for_process(self.index), theirs)

    def _after_start(self) -> None:
        ours, theirs = self._pair
        del self._pair
        theirs.close()
        os.set_blocking(ours.fileno(), False)
        self._link = ours
        asyncio.get_running_loop().add_reader(ours.fileno(), self._relay)

    def _relay(self) -> None:
        """The child committed jobs: wake the job workers, wherever they run."""
        link = self._link
        try:
            data = os.read(link.fileno(), 4096) if link is not None else b""
        except BlockingIOError:
            return
        if not data:  # the child exited; ``supervise`` starts another
            self._closed()
            return
        self.services.jobs.wake()

    def _closed(self) -> None:
        """Stop relaying and close the hub's end (in the hub's loop, when the child exited)."""
        if self._link is not None:
            asyncio.get_running_loop().remove_reader(self._link.fileno())
            self._link.close()
            self._link = None

    def detach(self) -> None:
        """In the hub's loop, before ``stop``: stop relaying, but keep the link open until the
        child is gone. Closing it first made the child start to exit on the pipe's end, and the
        SIGTERM of ``stop`` then landed in its interpreter's teardown, after its handler was
        gone (exit code -15 instead of 0, seen under load)."""
        if self._link is not None:
            asyncio.get_running_loop().remove_reader(self._link.fileno())

    def stop(self, timeout: float = 30.0) -> None:
        link, self._link = (
            self._link,
            None,
        )  # off the loop's thread: ``_closed`` already ran, or cannot
        super().stop(timeout)
        if link is not None:
            link.close()


def start_smtp_processes(settings: Settings, services: Services, count: int) -> list[SmtpProcess]:
    """``count`` SMTP processes beside this one, on the ports it bound
    (``services.smtp_ports``)."""
    if count < 1:
        return []
    child_settings = copy.deepcopy(settings)
    for name, port in services.smtp_ports.items():
        setattr(
            child_settings.ports, name, port
        )  # port 0 was a free port: the children take the same
    limiter = services.connection_limiter
    children = [
        SmtpProcess(child_settings, index, limiter, services) for index in range(1, count + 1)
    ]
    for child in children:
        child.start()
    return children


def imap_count(settings: Settings, db: Database) -> int:
    """Processes serving IMAP: ``[listeners] imap_processes`` on PostgreSQL, one on SQLite.

    An IDLE session is woken by a change made in another process through PostgreSQL's
    LISTEN/NOTIFY (``mss.mailbox.notify``); SQLite has no channel between processes, so a
    second IMAP process would show another's changes only at its next catch-up (30 s).
    """
    listeners = settings.listeners
    wanted = listeners.imap_processes if listeners.imap or listeners.imaps else 1
    if wanted > 1 and db.dialect != "postgresql":
        log.warning("listeners.imap_processes = %s needs PostgreSQL: one IMAP process", wanted)
        return 1
    return max(1, wanted)


class ImapProcess(ChildProcess):
    """One more IMAP process on the hub's IMAP ports (``[listeners] imap_processes``).

    Every IMAP process listens on the same ports (SO_REUSEPORT) and LISTENs on PostgreSQL's
    change channel, so IDLE in one sees what another (or an SMTP process) committed. The
    child stops on SIGTERM, or when it reads the end of its pipe (the hub is gone).
    """

    def __init__(self, settings: Settings, index: int) -> None:
        super().__init__(settings)
        self.name = f"mss-imap-{index}"
        self._link: Connection | None = None

    def _target(self, context: Any) -> tuple[Any, tuple[Any, ...]]:
        self._closed()
        reader, self._link = context.Pipe(duplex=False)
        self._reader = reader
        return _imap_process_main, (self.settings, reader)

    def _after_start(self) -> None:
        self._reader.close()
        del self._reader

    def _closed(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None


def start_imap_processes(
    settings: Settings, db: Database, bound: dict[str, int]
) -> list[ImapProcess]:
    """The IMAP processes beside this one (``imap_count`` - 1), on the ports it bound."""
    count = imap_count(settings, db) - 1
    if count < 1:
        return []
    child_settings = copy.deepcopy(settings)
    for name in ("imap", "imaps"):
        if name in bound:  # port 0 was a free port: the children take the same
            setattr(child_settings.ports, name, bound[name])
    children = [ImapProcess(child_settings, index) for index in range(1, count + 1)]
    for child in children:
        child.start()
    return children


def _imap_process_main(settings: Settings, link: Any) -> None:
    limit_malloc()
    _child_logging(settings)
    asyncio.run(run_imap_process(settings, link))


async def run_imap_process(settings: Settings, link: Any) -> None:
    """An IMAP child: the IMAP listeners on the shared ports until SIGTERM or the hub's end."""
    # not mss.schema (every table: 208 modules, 8.2 MB): the tables the IMAP store flushes
    # refer only to tables their models import (mss.mailbox.models imports mss.conversations
    # for messages.conversation_id); test_imap_processes APPENDs through this process
    from mss.crypto.tls import rotating_server_context
    from mss.mailbox.imap import start_imap_servers, stop_imap_servers

    passwords.configure(settings.auth.cache_seconds)
    db = Database(settings.effective_database_url)
    _child_metrics(settings, db)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_reader(link.fileno(), stop.set)  # readable only at its end: the hub is gone
    servers = await start_imap_servers(
        settings, db, rotating_server_context(settings), reuse_port=True
    )
    freeze_startup_objects()
    try:
        await stop.wait()
    finally:
        loop.remove_reader(link.fileno())
        await stop_imap_servers(servers)
        await db.dispose()


async def start_https_site(
    settings: Settings,
    db: Database,
    services: Services,
    *,
    reuse_port: bool = False,
    joining: bool = False,
) -> tuple[web.AppRunner, int]:
    """The HTTPS application on ``ports.https``: its runner and the port bound.

    With ``reuse_port`` other processes listen on the same port (SO_REUSEPORT); the first one
    refuses a port some other program already holds (a second ``mss serve`` would share it),
    ``joining``: the hub's first process holds it.
    """
    from aiohttp import web  # here: 12.8 MB of PSS a process that serves no HTTPS never pays

    from mss.crypto.tls import rotating_server_context
    from mss.http import ImplicitTlsSite, build_app
    from mss.ports import refuse_if_listened

    runner = web.AppRunner(build_app(settings, db, services), access_log=None)
    await runner.setup()
    context = services.tls_contexts["https"] = rotating_server_context(
        settings, client_cert="application", trust=services.trust
    )  # optional client certs: the DMP API
    site = ImplicitTlsSite(
        runner,
        settings.bind,
        settings.ports.https,
        context,
        reuse_address=True,
        reuse_port=reuse_port or None,
    )
    try:
        if reuse_port and not joining:
            refuse_if_listened(settings.bind, settings.ports.https)
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise port_error(settings, "https", exc) from None
    except BaseException:
        await runner.cleanup()
        raise
    return runner, site.port


def https_count(settings: Settings, db: Database) -> int:
    """Processes serving HTTPS: ``[listeners] https_processes``; "auto" is one per core (at
    most ``AUTO_SMTP_PROCESSES``) on PostgreSQL and one on SQLite.

    Everything a request relies on is in the database (sessions, their CSRF token and
    one-time code, the login throttle), so any process may serve any request. On SQLite every
    process's audit writer takes the one file's write lock in turn (busy timeout): correct,
    but a second process adds little there, so "auto" keeps one; a number is honoured.
    """
    from mss.config import AUTO_SMTP_PROCESSES, usable_cpus

    wanted = settings.listeners.https_processes
    if not settings.listeners.https:
        return 1
    if wanted == "auto":
        if db.dialect != "postgresql":
            return 1
        return max(1, min(usable_cpus(), AUTO_SMTP_PROCESSES))
    return max(1, int(wanted))


class HttpsProcess(SmtpProcess):
    """One more process on the hub's HTTPS port (``[listeners] https_processes``).

    It serves the whole HTTPS application (portal, document API, directory) on the same
    database; like an SMTP child it writes a byte on its pipe when it commits new jobs (a
    reply, a notification) and stops when it reads the pipe's end (the hub is gone).
    """

    def __init__(self, settings: Settings, index: int, services: Services) -> None:
        ChildProcess.__init__(self, settings)
        self.index = index
        self.name = f"mss-https-{index}"
        self.services = services
        self._link: Connection | None = None

    def _target(self, context: Any) -> tuple[Any, tuple[Any, ...]]:
        self._closed()
        ours, theirs = context.Pipe(duplex=True)
        self._pair = (ours, theirs)
        return _https_process_main, (self.settings, theirs)


def start_https_processes(
    settings: Settings, services: Services, port: int, count: int
) -> list[HttpsProcess]:
    """``count`` HTTPS processes beside this one, on the port it bound."""
    if count < 1:
        return []
    child_settings = copy.deepcopy(settings)
    child_settings.ports.https = port  # port 0 was a free port: the children take the same
    children = [HttpsProcess(child_settings, i, services) for i in range(1, count + 1)]
    for child in children:
        child.start()
    return children


def _https_process_main(settings: Settings, link: Any) -> None:
    limit_malloc()
    _child_logging(settings)
    asyncio.run(run_https_process(settings, link))


def _delivering_child(
    settings: Settings, link: Any, **services_fields: Any
) -> tuple[Database, Services, asyncio.Event]:
    """What a child that delivers (SMTP, HTTPS) sets up first, on its running loop: the
    password cache, the follow-ups, its database pool and metrics, the trust store, its
    services (whose job wake-ups go to the hub through ``link``), and the event set on
    SIGTERM, SIGINT or the end of ``link`` (the hub is gone)."""
    from mss.crypto.trust import TrustStore

    passwords.configure(settings.auth.cache_seconds)
    register_follow_ups()
    db = Database(settings.effective_database_url)
    _child_metrics(settings, db)
    fd = link.fileno()
    os.set_blocking(fd, False)
    services = Services(settings, trust=TrustStore.from_settings(settings), **services_fields)
    services.jobs.use(_LinkWaker(fd))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def readable() -> None:
        try:
            if not os.read(fd, 4096):  # the hub is gone
                loop.remove_reader(fd)
                stop.set()
        except BlockingIOError:
            pass

    loop.add_reader(fd, readable)
    return db, services, stop


async def run_https_process(settings: Settings, link: Any) -> None:
    """An HTTPS child: the HTTPS application on the shared port until SIGTERM, SIGINT or the
    hub's end."""
    import mss.schema  # noqa: F401 - every table, as in the hub

    db, services, stop = _delivering_child(settings, link)  # a portal reply is delivered here
    trust = services.trust
    loop = asyncio.get_running_loop()
    runner, port = await start_https_site(settings, db, services, reuse_port=True, joining=True)
    handshake_failures.install(loop, listener_names({"https": port}, services))
    trust_task = asyncio.create_task(
        keep_trust_fresh(settings, trust, sign_dev_crl=False)
    )  # the hub signs it
    try:
        await stop.wait()
    finally:
        trust_task.cancel()
        await asyncio.gather(trust_task, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runner.cleanup(), 10)
        await db.dispose()


def _child_logging(settings: Settings) -> None:
    from mss.log_format import configure_logging

    configure_logging(settings)


def _child_metrics(settings: Settings, db: Database) -> None:
    """A child writes its metrics beside the hub's, which ``/metrics`` adds up."""
    metrics.use_multiprocess(metrics.metrics_directory(settings.data_path))
    metrics.hub_metrics().db_pool_capacity.inc(db.pool_capacity)


def _smtp_process_main(settings: Settings, limiter: Any, link: Any) -> None:
    limit_malloc()
    _child_logging(settings)
    asyncio.run(run_smtp_process(settings, limiter, link))


class _LinkWaker:
    """``services.jobs`` in an SMTP child: one byte to the hub, which wakes the job workers."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def wake(self) -> None:
        try:
            os.write(self.fd, b"\0")
        except (
            BlockingIOError,
            BrokenPipeError,
            ConnectionResetError,
        ):  # already pending, or the hub is gone
            pass


async def run_smtp_process(settings: Settings, limiter: Any, link: Any) -> None:
    """An SMTP child: the SMTP listeners on the shared ports until SIGTERM, SIGINT or the hub's
    end."""
    from mss.smtp_gateway import start_smtp_servers

    db, services, stop = _delivering_child(settings, link, connection_limiter=limiter)
    trust = services.trust
    loop = asyncio.get_running_loop()
    servers = await start_smtp_servers(settings, db, services, reuse_port=True, joining=True)
    handshake_failures.install(loop, listener_names({}, services))
    trust_task = asyncio.create_task(
        keep_trust_fresh(settings, trust, sign_dev_crl=False)
    )  # the hub signs it
    try:
        await stop.wait()
    finally:
        for server in servers:
            server.close()
        trust_task.cancel()
        await asyncio.gather(trust_task, return_exceptions=True)
        for server in servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 10)
        await db.dispose()


def _job_process_main(settings: Settings, wake: Any, token: str | None = None) -> None:
    limit_malloc()
    _child_logging(settings)
    asyncio.run(run_job_process(settings, wake.fileno(), token))


async def run_job_process(
    settings: Settings, wake_fd: int | None = None, token: str | None = None
) -> None:
    """The job process: every job kind, the trust anchors kept fresh, until SIGTERM or SIGINT.

    Its runner leases jobs as ``runner_identity(its pid, token)``, the identity the hub
    releases if this process dies.
    """
    from mss.crypto.trust import TrustStore

    register_follow_ups()  # a job may deliver (the agenda's answers go through the gateway)
    db = Database(settings.effective_database_url)
    _child_metrics(settings, db)
    trust = TrustStore.from_settings(settings)
    runner = job_runner(db, Services(settings, trust=trust), runner_identity(os.getpid(), token))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, runner.stop)
    if wake_fd is not None:
        os.set_blocking(wake_fd, False)

        def woken() -> None:
            try:
                if not os.read(wake_fd, 4096):  # the hub is gone
                    loop.remove_reader(wake_fd)
                    runner.stop()
                    return
            except BlockingIOError:
                return
            runner.wake()

        loop.add_reader(wake_fd, woken)
    trust_task = asyncio.create_task(
        keep_trust_fresh(settings, trust, sign_dev_crl=False)
    )  # the hub signs it
    try:
        await runner.run_forever()
    finally:
        trust_task.cancel()
        await asyncio.gather(trust_task, return_exceptions=True)
        await db.dispose()


async def keep_trust_fresh(
    settings: Settings, trust: Any, interval: float = 60.0, *, sign_dev_crl: bool = True
) -> None:
    """Re-read anchors and CRLs (a revocation takes effect within a minute) and keep the dev CRL
    signed."""
    import datetime as dt

    from cryptography import x509

    from mss.crypto import pki
    from mss.db import utcnow

    while True:
        await asyncio.sleep(interval)
        try:
            dev_pki = (
                sign_dev_crl
                and not settings.tls.crl_file
                and (settings.pki_dir / "intermediate-ca.key").is_file()
            )
            if dev_pki and settings.crl_path.is_file():
                crl = x509.load_pem_x509_crl(settings.crl_path.read_bytes())
                if crl.next_update_utc is None or crl.next_update_utc - utcnow() < dt.timedelta(
                    days=2
                ):
                    await asyncio.to_thread(
                        pki.write_crls, settings.pki_dir, crl_path=settings.crl_path
                    )
            await asyncio.to_thread(trust.reload)
        except Exception:
            log.exception("could not refresh the trust anchors and revocation lists")


async def serve_forever(settings: Settings, db: Database) -> None:
    """Start the hub and run until SIGINT or SIGTERM."""
    limit_malloc()
    hub = Hub(settings, db)
    await hub.start()
    freeze_startup_objects()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("hub running")
    try:
        await stop.wait()
    finally:
        await hub.stop()
