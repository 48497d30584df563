"""What every package shares and none owns: the settings object, the user-facing errors, and
URL helpers (plain string work). Imports nothing else of the project."""
