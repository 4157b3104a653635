"""Plans: the 3-way diff of a sheet (or `runsync set` edits, or an undo) against W&B, with damage and moved-row checks."""
