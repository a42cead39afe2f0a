"""Runtime: served model versions over the native core, and the completion path."""
