"""The application on top: the ``ccsim`` command (and, later, the control-center server)."""
