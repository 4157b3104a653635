"""What a sheet column is and how its values read, compare and write: the codec, number text, per-field judgement."""
