"""The GraphQL schema (schema.graphql) executed by graphql-core, and resolvers over a Store."""
from __future__ import annotations

import base64
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from importlib import resources
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    build_schema,
    execute,
    parse,
    validate,
)
from graphql.language import ast
from graphql.utilities import value_from_ast_untyped

from . import query
from .limits import ConfigTooLarge, GatewayTimeout
from .records import RunRec
from .store import Store

USERNAME = "sandbox-user"


def _serialize_json_string(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _parse_literal(node: ast.ValueNode, variables: dict[str, Any] | None = None) -> Any:
    if isinstance(node, ast.StringValueNode):
        return node.value
    return value_from_ast_untyped(node, variables)


def load_schema() -> GraphQLSchema:
    """Build the schema from schema.graphql and attach the JSON scalars' codecs."""
    sdl = resources.files(__package__).joinpath("schema.graphql").read_text(encoding="utf-8")
    schema = build_schema(sdl)
    js = schema.type_map["JSONString"]
    js.serialize = _serialize_json_string  # type: ignore[attr-defined]
    js.parse_value = lambda v: v  # type: ignore[attr-defined]  # a string, or an object as sent
    js.parse_literal = _parse_literal  # type: ignore[attr-defined]
    j = schema.type_map["JSON"]
    j.serialize = lambda v: v  # type: ignore[attr-defined]
    j.parse_value = lambda v: v  # type: ignore[attr-defined]
    j.parse_literal = value_from_ast_untyped  # type: ignore[attr-defined]
    return schema


def _never_awaitable(value: Any) -> bool:
    return False  # every resolver is synchronous; skips graphql-core's per-field check (~15%)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass(frozen=True)
class Prepared:
    """A parsed and validated request document, with what stats and faults need to know."""

    document: DocumentNode
    operation_name: str | None  # the name to execute (None: the only operation)
    label: str  # the operation's name as written in the query text, for stats
    is_mutation: bool
    mutations: int = 0  # root fields of a mutation: aliased upsertBuckets are executed one after another


class PageTooLarge(Exception):
    """A page over the sandbox's page-size limit: the server answers HTTP 504, as the service's gateway does."""


class Resolvers:
    """Root values for Query and Mutation: plain dicts whose callables graphql-core calls."""

    def __init__(self, store: Store, entity: str = "e") -> None:
        self.store = store
        self.entity = entity
        self.faults: Any = None  # the server's Faults: page-size limit, overlapping pages (None: neither)
        self.schema = load_schema()
        self._docs: OrderedDict[str, DocumentNode] = OrderedDict()
        self._docs_lock = threading.Lock()

    # -- request handling ------------------------------------------------------------------------
    def prepare(self, text: str, operation_name: str | None) -> Prepared:
        """Parse and validate a query (cached by text); raise GraphQLError when it is not valid."""
        with self._docs_lock:
            doc = self._docs.get(text)
        if doc is None:
            doc = parse(text)
            errors = validate(self.schema, doc)
            if errors:
                raise GraphQLError("; ".join(e.message for e in errors))
            with self._docs_lock:
                self._docs[text] = doc
                while len(self._docs) > 256:
                    self._docs.popitem(last=False)
        # The Python client sends operationName "" for every query: treat it as no name.
        ops = [d for d in doc.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name:
            ops = [o for o in ops if o.name and o.name.value == operation_name]
            if not ops:
                raise GraphQLError(f"Unknown operation named {operation_name!r}.")
        elif len(ops) != 1:
            raise GraphQLError("Must provide operation name if query contains multiple operations.")
        op = ops[0]
        is_mutation = op.operation == OperationType.MUTATION
        return Prepared(doc, operation_name or None, op.name.value if op.name else "anonymous", is_mutation,
                        len(op.selection_set.selections) if is_mutation else 0)

    def run(self, prepared: Prepared, variables: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
        """Execute a prepared document; return (HTTP status, JSON response body).

        A config over the size limit is an error at its alias's path (the other aliases applied) and makes the
        answer HTTP 400, as the service's; a read past the gateway deadline raises GatewayTimeout (HTTP 504)."""
        result = execute(self.schema, prepared.document, root_value=self.root(),
                         variable_values=variables or {}, operation_name=prepared.operation_name,
                         is_awaitable=_never_awaitable)
        assert isinstance(result, ExecutionResult)  # nothing is awaitable here
        body: dict[str, Any] = {"data": result.data}
        for error in result.errors or ():
            if isinstance(error.original_error, (PageTooLarge, GatewayTimeout)):
                raise error.original_error
        if result.errors:
            body["errors"] = [e.formatted for e in result.errors]
        too_large = any(isinstance(e.original_error, ConfigTooLarge) for e in result.errors or ())
        return (400 if too_large else 200), body

    # -- objects ---------------------------------------------------------------------------------
    def root(self) -> dict[str, Any]:
        return {
            "viewer": lambda info: self.viewer(),
            "serverInfo": {"features": []},  # every optional feature off: the client falls back
            "project": lambda info, name=None, entityName=None: self.project(entityName, name),
            "models": self.projects,
            "projects": self.projects,
            "upsertBucket": lambda info, input: self.upsert_bucket(input),
        }

    def viewer(self) -> dict[str, Any]:
        return {
            "id": _b64("User:1"), "name": USERNAME, "username": USERNAME,
            "email": "sandbox-user@example.invalid", "admin": False, "flags": "{}",
            "entity": self.entity, "deletedAt": None, "photoUrl": None,
            "apiKeys": {"edges": []},
            "teams": {"edges": [{"node": {"id": _b64("Entity:1"), "name": self.entity}}]},
        }

    def _project_obj(self, p: dict[str, Any]) -> dict[str, Any]:
        entity, name = p["entity"], p["name"]
        store = self.store

        def runs(info: Any, filters: Any = None, after: str | None = None,
                 first: int | None = None, order: str | None = None) -> dict[str, Any]:
            faults = self.faults
            if faults is not None and faults.too_large(first):
                raise PageTooLarge(f"a page of {first} runs is over the limit of {faults.max_page_size}")
            shift = faults.page_shift(50 if first is None else first) if faults is not None and after else 0
            page = query.page_runs(store, entity, name, filters, order, first, after, shift=shift)
            if faults is not None:
                faults.limits.read_cost(len(page["items"]))  # big pages take longer (and may outlast the gateway)
            edges = [{"node": self.run_obj(r, obj), "cursor": c} for r, c in page["items"]]
            return {
                "totalCount": page["total"], "edges": edges,
                "pageInfo": {"endCursor": page["end_cursor"], "hasNextPage": page["has_next"],
                             "startCursor": edges[0]["cursor"] if edges else None,
                             "hasPreviousPage": after is not None},
            }

        def run(info: Any, name: str) -> dict[str, Any] | None:
            rec = store.find_run(entity, p["name"], name)
            if rec is not None and self.faults is not None:
                self.faults.limits.read_cost(1)
            return None if rec is None else self.run_obj(rec, obj)

        obj = {
            "id": _b64(f"Project:{p['rowid']}"), "internalId": str(p["rowid"]), "name": name,
            "entityName": entity, "createdAt": p["created_at"], "isBenchmark": False,
            "readOnly": False, "user": self.viewer(), "entity": {"id": _b64(f"Entity:{entity}"), "name": entity},
            "runCount": lambda info, filters=None: query.count_runs(store, entity, name, filters),
            "runs": runs, "run": run,
        }
        return obj

    def project(self, entity: str | None, name: str | None) -> dict[str, Any] | None:
        p = self.store.get_project(entity or self.entity, name or "")
        return None if p is None else self._project_obj(p)

    def projects(self, info: Any, entityName: str | None = None, after: str | None = None,
                 first: int | None = None) -> dict[str, Any]:
        ps = self.store.list_projects(entityName or self.entity)
        if after:
            ps = [p for p in ps if p["rowid"] > int(after)]
        page = ps[: 50 if first is None else first]
        edges = [{"node": self._project_obj(p), "cursor": str(p["rowid"])} for p in page]
        return {"edges": edges, "pageInfo": {
            "endCursor": edges[-1]["cursor"] if edges else after, "hasNextPage": len(ps) > len(page),
            "startCursor": edges[0]["cursor"] if edges else None, "hasPreviousPage": bool(after)}}

    def run_obj(self, r: RunRec, project: dict[str, Any] | None = None) -> dict[str, Any]:
        """Return a Run node; config/summary are the stored JSON text, exactly as written."""
        return {
            "id": r.storage_id, "name": r.name, "displayName": r.display_name,
            "tags": r.tag_list, "group": r.grp, "jobType": r.job_type, "notes": r.notes,
            "description": r.description, "state": r.state, "createdAt": r.created_at,
            "heartbeatAt": r.heartbeat_at, "updatedAt": r.updated_at, "config": r.config,
            "summaryMetrics": r.summary, "systemMetrics": r.system_metrics,
            "historyKeys": {"lastStep": r.history_line_count - 1, "keys": {}},
            "historyLineCount": r.history_line_count, "sweepName": r.sweep_name,
            "commit": r.commit_sha, "readOnly": False,
            "projectId": int((project or {}).get("internalId") or self._project_rowid(r)),
            "user": {"id": _b64("User:1"), "name": USERNAME, "username": USERNAME},
            "project": project if project is not None else (
                lambda info: self.project(r.entity, r.project)),
        }

    def _project_rowid(self, r: RunRec) -> int:
        p = self.store.get_project(r.entity, r.project)
        return p["rowid"] if p else 0

    def upsert_bucket(self, inp: dict[str, Any]) -> dict[str, Any]:
        if self.faults is not None and self.faults.write_ms:
            time.sleep(self.faults.write_ms / 1000.0)
        rec, inserted = self.store.upsert(inp)
        return {"bucket": self.run_obj(rec), "inserted": inserted, "updateAvailable": False}
