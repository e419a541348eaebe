"""The ``sturdysearch`` command line: argv -> settings -> a plain function per subcommand."""
