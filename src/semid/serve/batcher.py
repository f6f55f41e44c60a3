"""Micro-batching: concurrent requests answered by one model call (one beam search for many users).

A worker takes the first waiting request, then every request that arrived meanwhile (up to
``max_batch``, waiting at most ``max_wait_s`` for more), and runs ``fn`` on the batch in one
worker thread, so model calls never overlap and the event loop stays free to accept requests.
While one batch computes the next one fills: under load batches grow by themselves, and a lone
request waits only ``max_wait_s``. ``max_batch=1`` answers each request alone (the baseline).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

T, R = TypeVar("T"), TypeVar("R")


class MicroBatcher(Generic[T, R]):
    def __init__(self, fn: Callable[[list[T]], list[R]], *, max_batch: int = 64, max_wait_s: float = 0.002):
        self.fn, self.max_batch, self.max_wait_s = fn, max_batch, max_wait_s
        self.queue: asyncio.Queue[tuple[T, asyncio.Future]] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="semid-model")
        self.batches = self.requests = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self.queue.empty():
            _, fut = self.queue.get_nowait()
            if not fut.done():
                fut.set_exception(RuntimeError("the service is shutting down"))
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, item: T) -> R:
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put((item, fut))
        return await fut

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = time.perf_counter() + self.max_wait_s
            while len(batch) < self.max_batch:
                if self.queue.empty():
                    left = deadline - time.perf_counter()
                    if left <= 0:
                        break
                    await asyncio.sleep(min(left, 0.0005))
                    continue
                batch.append(self.queue.get_nowait())
            batch = [(item, fut) for item, fut in batch if not fut.done()]  # a client that left is skipped
            if not batch:
                continue
            self.batches, self.requests = self.batches + 1, self.requests + len(batch)
            try:
                results: list[Any] = await loop.run_in_executor(self.executor, self.fn, [item for item, _ in batch])
            except Exception as exc:  # the batch failed as a whole: every caller gets the error
                results = [exc] * len(batch)
            for (_, fut), res in zip(batch, results):
                if fut.done():
                    continue
                if isinstance(res, BaseException):
                    fut.set_exception(res)
                else:
                    fut.set_result(res)
