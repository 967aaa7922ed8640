"""The detached (per-user, kernel-outliving) stack: the server process (``daemon``), the handle a
kernel or shell uses (``handle``), and the state file."""
