"""What one Graph member page costs to turn into objects: msgraph-sdk's models versus plain JSON.

``python -m bench.parse_cost [--objects 999] [--repeat 3]`` builds one transitiveMembers page as
the Graph emulator answers it (``$select=id,displayName,mail,userPrincipalName,accountEnabled``,
``#microsoft.graph.user`` items) and parses it

- the way the sync does today: kiota's JSON parse node into
  ``DirectoryObjectCollectionResponse`` (msgraph-sdk models, polymorphic on ``@odata.type``);
- with ``json.loads`` and reading the five fields from the dicts.

The first msgraph-sdk parse in a process also imports the model modules it needs; it is reported
apart ("cold") from the following ones ("warm").
"""

from __future__ import annotations

import argparse
import json
import time
import uuid


def page(objects: int) -> bytes:
    items = []
    for i in range(objects):
        upn = f"user.{i}@contoso-bench.com"
        items.append({"@odata.type": "#microsoft.graph.user", "id": str(uuid.UUID(int=i + 1, version=4)),
                      "displayName": f"User {i}", "mail": upn, "userPrincipalName": upn,
                      "accountEnabled": i % 60 != 0})
    return json.dumps({"@odata.context": "http://127.0.0.1/v1.0/$metadata#directoryObjects", "value": items,
                       "@odata.nextLink": "http://127.0.0.1/v1.0/next"}).encode()


def parse_msgraph(payload: bytes) -> int:
    from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
    from msgraph.generated.models.directory_object_collection_response import (
        DirectoryObjectCollectionResponse,
    )
    from msgraph.generated.models.user import User

    node = JsonParseNodeFactory().get_root_parse_node("application/json", payload)
    result = node.get_object_value(DirectoryObjectCollectionResponse)
    return sum(1 for item in result.value or [] if isinstance(item, User) and item.id)


def parse_json(payload: bytes) -> int:
    body = json.loads(payload)
    count = 0
    for item in body["value"]:
        if item.get("@odata.type") == "#microsoft.graph.user" and item.get("id"):
            _ = (item.get("userPrincipalName"), item.get("mail"), item.get("displayName"),
                 item.get("accountEnabled"))
            count += 1
    return count


def measure(objects: int, repeat: int) -> dict[str, float]:
    payload = page(objects)
    start = time.perf_counter()
    assert parse_msgraph(payload) == objects
    cold = time.perf_counter() - start
    warm = []
    for _ in range(repeat):
        start = time.perf_counter()
        parse_msgraph(payload)
        warm.append(time.perf_counter() - start)
    plain = []
    for _ in range(repeat):
        start = time.perf_counter()
        assert parse_json(payload) == objects
        plain.append(time.perf_counter() - start)
    return {"objects": objects, "msgraph_cold_s": cold, "msgraph_warm_s": min(warm), "json_s": min(plain),
            "msgraph_us_per_object": min(warm) / objects * 1e6,
            "json_us_per_object": min(plain) / objects * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.parse_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=999)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    r = measure(args.objects, args.repeat)
    print(f"one page of {r['objects']} users: msgraph-sdk models {r['msgraph_warm_s']:.2f} s "
          f"({r['msgraph_us_per_object']:,.0f} us/object; "
          f"first page in the process {r['msgraph_cold_s']:.2f} s), "
          f"json.loads {r['json_s'] * 1000:.1f} ms ({r['json_us_per_object']:.1f} us/object): "
          f"{r['msgraph_warm_s'] / r['json_s']:,.0f}x")


if __name__ == "__main__":
    main()
