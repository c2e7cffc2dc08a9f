"""Python jobs of the music-streaming warehouse: warehouse, generate, load, train, ab, report."""
