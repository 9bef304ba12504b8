"""The registered Functions, indexed once (FunctionApp.get_functions() refuses a second call), and
what the host would otherwise do for them here: deliver queue messages, hold a run in the middle."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping

from azure.core.exceptions import ResourceExistsError
from azure.functions.queue import QueueMessage
from azure.storage.queue import QueueClient

import function_app
from emulators.http_base import FaultInjector, Request
from sync_core.run_queue import RUN_QUEUE
from sync_core.state.settings import make_queue_client, read_storage_setting

FUNCTIONS = {f.get_function_name(): f for f in function_app.app.get_functions()}
WAIT_SECONDS = 60.0  # for an event that should come at once; only a broken run takes this long


def run_queue_client(env: Mapping[str, str]) -> QueueClient:
    """The app's run queue in ``env``'s storage, created and empty (Bicep creates it in Azure)."""
    target = read_storage_setting(env)
    assert target is not None
    client = make_queue_client(target, RUN_QUEUE)
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()
    client.clear_messages()
    return client


async def receive(client: QueueClient, invisible_for: int = 30) -> QueueMessage:
    """The next message as the host hands it to the function (decoded, with its dequeue count); it
    is delivered again after ``invisible_for`` seconds unless deleted."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while loop.time() < deadline:
        batch = await receive_waiting(client, 1, invisible_for)
        if batch:
            return batch[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no message on {RUN_QUEUE} within {WAIT_SECONDS} s")


async def receive_waiting(client: QueueClient, most: int, invisible_for: int = 30) -> list[QueueMessage]:
    """The messages waiting now (at most ``most``), possibly none."""
    received = await asyncio.to_thread(
        lambda: list(client.receive_messages(max_messages=most, visibility_timeout=invisible_for)))
    return [QueueMessage(id=m.id, body=m.content.encode(), dequeue_count=m.dequeue_count, pop_receipt=m.pop_receipt)
            for m in received]


async def run_queued(client: QueueClient, message: QueueMessage) -> QueueMessage:
    """Run the queue function on ``message`` and delete it when the function succeeds, as the host does."""
    await FUNCTIONS["sync_queued"].get_user_function()(message)
    await asyncio.to_thread(client.delete_message, message.id, message.pop_receipt)
    return message


async def deliver(client: QueueClient) -> QueueMessage:
    """Receive the next message and run the queue function on it."""
    return await run_queued(client, await receive(client))


class Gate(FaultInjector):
    """An emulator fault injector that holds every request until opened: a run caught in the middle.
    ``reached`` is set by the first request held."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self._open = threading.Event()

    def decide(self, request: Request) -> None:
        self.reached.set()
        self._open.wait(WAIT_SECONDS)
        return None

    def open(self) -> None:
        self._open.set()

    async def wait_reached(self) -> None:
        assert await asyncio.to_thread(self.reached.wait, WAIT_SECONDS), "no request reached the emulator"
