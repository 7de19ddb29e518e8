"""SQLite WAL checkpoints on a thread of their own, for the writer in :mod:`idp.storage.database`."""

from __future__ import annotations

import concurrent.futures
import logging
import threading

from sqlalchemy import Engine

from idp.cpus import name_os_thread

log = logging.getLogger(__name__)


class Checkpointer:
    """WAL checkpoints off the event loop (the writer's auto-checkpoint is disabled).

    A passive checkpoint every :attr:`EVERY` seconds while there are commits copies the WAL back
    into the database file. It cannot start the WAL over: SQLite rewinds the WAL only when a
    write transaction begins with every frame already copied, and under a steady load there is
    always a commit after the last copy. Left alone the WAL file then grows for as long as the
    load lasts (27 MB/s under the refresh-token benchmark; a test wrote 46 MB in 2 s), and so
    does the work of recovering it at the next start. So once the WAL holds
    :attr:`RESTART_FRAMES` frames the writer holds its next batch back (:meth:`catch_up`) while
    one more checkpoint copies the frames written since the last; the batch then begins on a
    fully copied WAL and writes from its start again. The hold costs that checkpoint's two
    fsyncs (20-40 ms on a cloud disk), once per 64 MiB written: SQLite's own auto-checkpoint
    does the same inside a commit once per 4 MiB.
    """

    EVERY = 0.5
    RESTART_FRAMES = 16384  # 64 MiB of 4 KiB pages

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._wake = threading.Event()
        self._urgent = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._waiting: list[concurrent.futures.Future[bool]] = []
        self.restart_due = False

    def poke(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="idp-sqlite-checkpoint", daemon=True)
            self._thread.start()
        self._wake.set()

    def catch_up(self) -> concurrent.futures.Future[bool]:
        """A checkpoint now, for a writer that begins nothing until it is done; True when it
        copied every frame (the writer's next transaction then starts the WAL over)."""
        self.restart_due = False  # one attempt per periodic checkpoint that asked for it
        future: concurrent.futures.Future[bool] = concurrent.futures.Future()
        with self._lock:
            self._waiting.append(future)
        self.poke()
        self._urgent.set()
        return future

    def _run(self) -> None:
        name_os_thread()
        with self._engine.connect() as conn:
            while not self._stop.is_set():
                self._wake.wait()
                self._wake.clear()
                self._urgent.clear()
                with self._lock:
                    waiting, self._waiting = self._waiting, []
                # a writer that gave up waiting (its timeout) cancelled its future
                waiting = [future for future in waiting if future.set_running_or_notify_cancel()]
                try:
                    _busy, frames, copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
                except Exception as exc:  # a disk error, say: the commits themselves will tell
                    log.warning("WAL checkpoint failed: %s", exc)
                    for future in waiting:
                        future.set_exception(exc)
                    self._urgent.wait(self.EVERY)
                    continue
                for future in waiting:
                    future.set_result(frames == copied)
                if not waiting:
                    self.restart_due = frames >= self.RESTART_FRAMES
                self._urgent.wait(self.EVERY)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._urgent.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for future in waiting:
            future.cancel()
