"""What a sheet column is and how its values read, compare and write: the field registry (kinds), the codec,
number text, per-field judgement."""
from __future__ import annotations

from runsync.fields.kinds import (
    STATUS_COLUMN,
    Kind,
    export_columns,
    is_editable,
    is_readonly,
    kind_of,
    new_key_counts,
    ordered_fields,
    summary_column,
    summary_name,
    tag_column,
)
from runsync.model import PLAN_VIEWS

# conflicts too: --force writes them
PLAN_VIEWS["new_key_counts"] = lambda plan: new_key_counts((*plan.changes, *plan.conflicts))

__all__ = ["STATUS_COLUMN", "Kind", "export_columns", "is_editable", "is_readonly", "kind_of", "new_key_counts",
           "ordered_fields", "summary_column", "summary_name", "tag_column"]
