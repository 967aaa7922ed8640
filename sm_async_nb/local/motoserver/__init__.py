"""moto glue: moto's server in a child process or a thread (``server``), and the direct access
to its backends (``backends``)."""
