"""What a sheet column is and how its values read, compare and write: the field registry (kinds), the codec,
number text, per-field judgement."""
from __future__ import annotations

from runsync.fields.kinds import (
    STATUS_COLUMN,
    ConfigKey,
    IdColumn,
    Kind,
    RunField,
    StatusColumn,
    SummaryMetric,
    Tags,
    TagTick,
    TextField,
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
from runsync.model import PLAN_VIEWS, Plan


# conflicts too: --force writes them
def _plan_new_key_counts(plan: Plan) -> dict[str, int]:
    return new_key_counts((*plan.changes, *plan.conflicts))


PLAN_VIEWS["new_key_counts"] = _plan_new_key_counts

__all__ = ["STATUS_COLUMN", "ConfigKey", "IdColumn", "Kind", "RunField", "StatusColumn", "SummaryMetric", "TagTick",
           "Tags", "TextField", "export_columns", "is_editable", "is_readonly", "kind_of", "new_key_counts",
           "ordered_fields", "summary_column", "summary_name", "tag_column"]
