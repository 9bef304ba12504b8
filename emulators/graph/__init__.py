"""A stateful Microsoft Graph (v1.0 directory subset) emulator for tests, demos and the benchmark."""

from emulators.graph.server import GraphEmulator, graph_fault_response
from emulators.graph.tenant import Tenant, load_tenant
from emulators.graph.throttle import ResourceUnitBudget

__all__ = ["GraphEmulator", "ResourceUnitBudget", "Tenant", "graph_fault_response", "load_tenant"]
