"""One module per scenario of the issue; each has ``run(bench) -> list[Row]``."""
