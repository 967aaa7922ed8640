"""The notebook surface: the magics (parse and print only), the kernel's session, wait progress
and the panel. It imports the core; the core never imports it (except ``client.panel()``)."""
