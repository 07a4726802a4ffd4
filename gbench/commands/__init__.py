"""One module per ``gbench`` command; see :data:`gbench.cli.COMMANDS`."""
