"""One read of the Graph emulator with the real msgraph-sdk, as the tests of the reader need it."""

from __future__ import annotations

import asyncio

from emulators.graph import GraphEmulator
from sync_core.graph.client import build_graph_client
from sync_core.graph.pacing import ResourceUnitPacer
from sync_core.graph.reader import GraphReader, GraphSource
from sync_core.model import Directory
from sync_core.settings import Settings
from tests.conftest import sync_env


def reader(graph: GraphEmulator, *, nested: bool = True, email: str = "userPrincipalName",
           pacer: ResourceUnitPacer | None = None) -> GraphReader:
    settings = Settings.from_env(sync_env(graph.base_url, "http://127.0.0.1:9"))
    source = GraphSource(base_url=graph.base_url, app_id=settings.entra_app_id, nested_groups=nested,
                         email_attribute=email)  # type: ignore[arg-type]
    return GraphReader(build_graph_client(settings, pacer=pacer), source, pacer)


def read(graph: GraphEmulator, *, nested: bool = True, email: str = "userPrincipalName",
         only: frozenset[str] | None = None, pacer: ResourceUnitPacer | None = None) -> tuple[Directory, GraphReader]:
    graph_reader = reader(graph, nested=nested, email=email, pacer=pacer)
    return asyncio.run(graph_reader.read(only)), graph_reader
