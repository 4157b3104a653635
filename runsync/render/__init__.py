"""Views of plans, reports and errors. The only package that imports rich."""
from runsync.render.plan import plan_json, render_apply_report, render_errors, render_plan

__all__ = ["plan_json", "render_apply_report", "render_errors", "render_plan"]
