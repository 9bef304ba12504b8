"""Just enough of Bicep to read what infra/ would deploy, for tests on a machine without Azure.

No Bicep compiler and no Azure CLI can be installed here, so pycep-parser turns each .bicep file
into JSON and this module evaluates its expressions for given parameter values, following local
modules. What only Azure knows (an identity's client id, a secret's URI) comes from `_runtime`: a
value of the right shape, derived from the resource's name, so that the tests can feed the app
settings to the real settings code. Anything else it cannot know stays a symbol, "<vault.id>".

pycep renders an identifier and a string literal alike ('vault' and vault both become "vault"), so
a bare string naming a declared symbol is read as that symbol; infra/ avoids literals that collide.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pycep import BicepParser

INFRA = Path(__file__).resolve().parents[2] / "infra"
SUBSCRIPTION_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
# The storage endpoints Azure returns here are a national cloud's (Azure Government), so that a
# hard-coded public-cloud suffix anywhere between the account and the app shows up as a mismatch.
STORAGE_SUFFIX = "core.usgovcloudapi.net"
DEPLOYED_AT = "2026-12-03T12:00:00Z"  # utcNow() at deployment"
TENANT_ID = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")


@functools.cache
def parse(path: Path) -> dict[str, Any]:
    return BicepParser().parse(file_path=path)


def is_secure(doc: dict[str, Any], param: str) -> bool:
    return any(d["type"] == "secure" for d in doc["parameters"][param]["decorators"])


def sample_guid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


class DeploymentRefused(Exception):
    """The template's fail(): Azure stops the deployment with this message."""


@dataclass(frozen=True)
class Resource:
    template: Template
    symbol: str

    @property
    def body(self) -> dict[str, Any]:
        return self.template.resource_body(self.symbol)

    @property
    def type(self) -> str:
        return self.template.doc["resources"][self.symbol]["type"]

    @property
    def name(self) -> Any:
        return self.template.eval(self.body["name"])

    def prop(self, path: list[str]) -> Any:
        if path == ["name"]:
            return self.name
        if self.type == "Microsoft.KeyVault/vaults/secrets" and path == ["properties", "secretUri"]:
            return f"{self.value('parent').prop(['properties', 'vaultUri'])}secrets/{self.name}"
        known = _runtime(self.type, ".".join(path), self.name)
        return known if known is not None else f"<{self.symbol}.{'.'.join(path)}>"

    def value(self, key: str) -> Any:
        return self.template.eval(self.body.get(key))


def _runtime(rtype: str, path: str, name: str) -> str | None:
    """What Azure returns for these properties, in the right shape (ids are GUIDs, URIs are URIs)."""
    shapes = {
        ("Microsoft.ManagedIdentity/userAssignedIdentities", "properties.clientId"):
            lambda: sample_guid(name, "clientId"),
        ("Microsoft.ManagedIdentity/userAssignedIdentities", "properties.principalId"):
            lambda: sample_guid(name, "principalId"),
        ("Microsoft.KeyVault/vaults", "properties.vaultUri"): lambda: f"https://{name}.vault.azure.net/",
        ("Microsoft.Storage/storageAccounts", "properties.primaryEndpoints.blob"):
            lambda: f"https://{name}.blob.{STORAGE_SUFFIX}/",
        ("Microsoft.Storage/storageAccounts", "properties.primaryEndpoints.queue"):
            lambda: f"https://{name}.queue.{STORAGE_SUFFIX}/",
        ("Microsoft.Insights/components", "properties.ConnectionString"):
            lambda: f"InstrumentationKey={sample_guid(name)};IngestionEndpoint=https://example.in.applicationinsights.azure.com/",
    }
    if path == "id":
        return f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/<rg>/providers/{rtype}/{name}"
    shape = shapes.get((rtype, path))
    return shape() if shape else None


@dataclass(frozen=True)
class Module:
    template: Template
    symbol: str

    @property
    def child(self) -> Template:
        return self.template.child(self.symbol)


@dataclass(eq=False)
class Template:
    """One .bicep file with its parameters bound; modules are bound to what their caller passes."""

    path: Path
    args: dict[str, Any]
    doc: dict[str, Any] = field(init=False)
    _children: dict[str, Template] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.doc = parse(self.path)
        unknown = set(self.args) - set(self.doc.get("parameters", {}))
        if unknown:
            raise ValueError(f"{self.path.name}: no parameter {sorted(unknown)}")
        for name, param in self.doc.get("parameters", {}).items():
            if name not in self.args:
                if param.get("default") is None:
                    raise ValueError(f"{self.path.name}: parameter {name} is required")
                self.args[name] = self.eval(param["default"])

    # ---- declarations ----

    def decorators(self, param: str) -> dict[str, Any]:
        return {d["type"]: d.get("argument") for d in self.doc["parameters"][param]["decorators"]}

    def resource_body(self, symbol: str) -> dict[str, Any]:
        config = self.doc["resources"][symbol]["config"]
        return config["config"] if "condition" in config else config  # a conditional resource nests it

    def deployed(self, symbol: str) -> bool:
        config = self.doc["resources"][symbol]["config"]
        return "condition" not in config or bool(self.eval(config["condition"]))

    def resources(self) -> Iterator[Resource]:
        """Every resource this file and its modules deploy (not `existing` ones), given the parameters."""
        for symbol, decl in self.doc.get("resources", {}).items():
            if not decl["existing"] and self.deployed(symbol):
                yield Resource(self, symbol)
        for symbol in self.doc.get("modules", {}):
            yield from self.child(symbol).resources()

    def child(self, symbol: str) -> Template:
        if symbol not in self._children:
            module = self.doc["modules"][symbol]
            params = {k: self.eval(v) for k, v in module["config"].get("params", {}).items()}
            self._children[symbol] = Template(self.path.parent / module["detail"]["path"], params)
        return self._children[symbol]

    def output(self, name: str) -> Any:
        return self.eval(self.doc["outputs"][name]["value"])

    # ---- expressions ----

    def eval(self, expr: Any) -> Any:
        if isinstance(expr, str):
            return self._string(expr)
        if isinstance(expr, list):
            return [self.eval(item) for item in expr]
        if isinstance(expr, dict):
            # pycep wraps calls and operators in a one-key object; a user's object may use those keys too.
            if set(expr) == {"function"} and isinstance(expr["function"], dict):
                return self._call(expr["function"]["type"], list(expr["function"].get("parameters", {}).values()))
            if set(expr) == {"operator"} and isinstance(expr["operator"], dict):
                return self._operator(expr["operator"]["type"], expr["operator"]["operands"])
            return {self._key(k): self.eval(v) for k, v in expr.items()}
        return expr  # numbers, booleans, None

    def _key(self, key: str) -> str:
        """An object key is a name ('quoted' when it is not an identifier), or an interpolated string."""
        key = key.strip("'")
        return self._interpolate(key) if "${" in key else key

    def _interpolate(self, text: str) -> str:
        return _INTERPOLATION.sub(lambda m: str(self._path(m.group(1).split("."))), text)

    def _string(self, text: str) -> Any:
        if "${" in text:
            return self._interpolate(text)
        if text in self.args:
            return self.args[text]
        if text in self.doc.get("variables", {}):
            return self.eval(self.doc["variables"][text]["value"])
        if text in self.doc.get("resources", {}):
            return Resource(self, text)
        if text in self.doc.get("modules", {}):
            return Module(self, text)
        return text

    def _path(self, parts: list[Any]) -> Any:
        value = self.eval(parts[0]) if isinstance(parts[0], dict) else self._string(parts[0])
        rest = [str(p) for p in parts[1:]]
        if isinstance(value, Resource):
            return value.prop(rest) if rest else value
        if isinstance(value, Module) and rest[:1] == ["outputs"]:
            value, rest = value.child.output(rest[1]), rest[2:]
        for key in rest:
            value = value[key]
        return value

    def _operator(self, kind: str, operands: dict[str, Any]) -> Any:
        if kind == "property_accessor":
            parts = [operands["operand_1"]]
            tail = operands["operand_2"]
            while isinstance(tail, dict) and tail.get("operator", {}).get("type") == "property_accessor":  # a.b.c nests right
                parts.append(tail["operator"]["operands"]["operand_1"])
                tail = tail["operator"]["operands"]["operand_2"]
            return self._path([*parts, tail])
        if kind == "conditional":
            chosen = "true_value" if self.eval(operands["condition"]) else "false_value"
            return self.eval(operands[chosen])
        if kind == "not":
            return not self.eval(operands["bool_value"])
        raise NotImplementedError(f"{self.path.name}: operator {kind}")

    def _call(self, name: str, raw_args: list[Any]) -> Any:
        args = [self.eval(a) for a in raw_args if a is not None]
        if name == "union":
            merged: dict[str, Any] = {}
            for arg in args:
                merged.update(arg)
            return merged
        if name == "empty":
            return not args[0]
        if name == "string":
            return json.dumps(args[0], separators=(",", ":")) if isinstance(args[0], dict | list) else str(args[0])
        if name == "to_lower":
            return args[0].lower()
        if name == "unique_string":  # 13 characters, deterministic, like ARM's (not the same hash)
            return hashlib.sha256("|".join(map(str, args)).encode()).hexdigest()[:13]
        if name == "guid":
            return sample_guid(*map(str, args))
        if name == "fail":
            raise DeploymentRefused(args[0])
        if name == "utc_now":
            return DEPLOYED_AT
        if name == "tenant":
            return {"tenantId": TENANT_ID}
        if name == "subscription":
            return {"id": f"/subscriptions/{SUBSCRIPTION_ID}", "subscriptionId": SUBSCRIPTION_ID}
        if name == "subscription_resource_id":
            rtype, *names = args
            return f"/subscriptions/{SUBSCRIPTION_ID}/providers/{rtype}/{'/'.join(names)}"
        raise NotImplementedError(f"{self.path.name}: function {name}")


def deploy(**params: Any) -> Template:
    """infra/main.bicep bound to these parameters (the rest take their defaults)."""
    return Template(INFRA / "main.bicep", {"environmentName": "test", "location": "westeurope", **params})
