"""The ``ostinato`` command's subcommands (registered in ``ostinato/__main__.py``)."""
