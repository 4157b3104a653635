"""The GraphQL documents runsync sends: the runs listing, and the upsertBucket writes (one, or a batch under
aliases)."""
from __future__ import annotations

import functools
import json
from typing import Any

RUNS_QUERY = """
query RunsyncRuns($project: String!, $entity: String!, $cursor: String, $perPage: Int, $order: String,
                  $filters: JSONString, $withCount: Boolean!, $withSummary: Boolean!) {
  project(name: $project, entityName: $entity) {
    runCount(filters: $filters) @include(if: $withCount)
    runs(filters: $filters, after: $cursor, first: $perPage, order: $order) {
      edges {
        node {
          id name displayName tags group jobType notes state createdAt config
          summaryMetrics @include(if: $withSummary)
        }
        cursor
      }
      pageInfo { endCursor hasNextPage }
    }
  }
}
"""

UPSERT_MUTATION = """
mutation RunsyncUpsertBucket($input: UpsertBucketInput!) {
  upsertBucket(input: $input) { bucket { id name } }
}
"""


def upsert_input(storage_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The UpsertBucketInput for these run fields (see upsert_run)."""
    mutation_input: dict[str, Any] = {"id": storage_id}
    for key, value in fields.items():
        if key == "name":
            mutation_input["displayName"] = value
        elif key == "tags":
            mutation_input["tags"] = list(value)
        elif key == "group":
            mutation_input["groupName"] = value
        elif key == "job_type":
            mutation_input["jobType"] = value
        elif key == "notes":
            mutation_input["notes"] = value
        elif key == "raw_config":
            # Compact: the text sent is then never longer than the stored config it lands in, which is what the
            # service's config limit is checked against (runsync/fields/limits.py).
            mutation_input["config"] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        elif key == "summary":
            mutation_input["summaryMetrics"] = json.dumps(value, ensure_ascii=False)  # NaN as the client sends it
        else:
            raise ValueError(f"unknown run field {key!r}")
    return mutation_input


@functools.lru_cache(maxsize=64)
def batch_mutation(size: int) -> str:
    """`size` upsertBuckets under aliases r0..r{size-1}, with inputs $i0..$i{size-1}."""
    params = ", ".join(f"$i{n}: UpsertBucketInput!" for n in range(size))
    fields = "\n  ".join(f"r{n}: upsertBucket(input: $i{n}) {{ bucket {{ id name }} }}" for n in range(size))
    return f"mutation RunsyncUpsertBuckets({params}) {{\n  {fields}\n}}\n"


def request_bytes(query: str, variables: dict[str, Any], *, ascii_only: bool = False) -> int:
    """The size of the request body the client sends for this operation (the service refuses one over ~10 MB).

    wandb-core (wandb >= 0.27) serializes it with Go's encoding/json: compact, UTF-8, and `<`, `>`, `&`, U+2028
    and U+2029 escaped as \\uXXXX (6 bytes, not 1 or 3); control characters as Python escapes them. The classic
    client (`ascii_only`) sends `requests`' JSON: every non-ASCII character escaped.
    """
    if ascii_only:
        return len(json.dumps({"query": query, "variables": variables}).encode())
    text = json.dumps({"query": query, "variables": variables, "operationName": ""}, ensure_ascii=False,
                      separators=(",", ":"))
    escaped = sum(text.count(c) for c in "<>&") * 5 + (text.count("\u2028") + text.count("\u2029")) * 3
    return len(text.encode("utf-8", "surrogatepass")) + escaped
