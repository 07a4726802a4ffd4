"""gbench's built-in plugins. Each module is a plain pluggy plugin, loaded
through the ``gbench`` entry-point group exactly like a third-party one."""
