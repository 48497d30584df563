"""Questions in, cited answers out: retrieve, answer, and the CLI, chat and Discord front ends."""
