"""The undo journal on disk: its events, the imports of one sheet, and what they wrote (a shared export's history)."""
