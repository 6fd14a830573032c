"""The ``ess`` command: ``main`` parses and dispatches, turning user mistakes into one line and exit status
2; one module per subcommand. Nothing imports this package."""
