"""The phased runner: journal (SQLite, undo before apply), lock (one run at a
time), walk (phases and steps, cleanup, resume), rollback (newest first),
events (what the CLI renders) and plugins (OCSSCALE_PLUGINS)."""
