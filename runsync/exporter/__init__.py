"""The exported table: columns, typed rows and the base snapshot, built from runs."""
