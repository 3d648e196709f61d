"""Core: what every layer shares and no outside system stands behind: the typed settings,
errors with exit codes, source formats, the fault-injection hook, progress bars and the data
dir's writer lock. Imports nothing of the project's above it."""
